package sigv4

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
)

// CheckPayload checks a whole, non-streaming body against the signature: in
// PayloadSHA256 mode its SHA-256 must be the signed one (else an error
// wrapping ErrPayloadMismatch); in PayloadUnsigned mode it does nothing.
// In a streaming mode it returns an error wrapping no sentinel: such bodies
// are aws-chunked and must go through NewChunkedReader.
func (a *Auth) CheckPayload(body []byte) error {
	switch a.Mode {
	case PayloadUnsigned:
		return nil
	case PayloadSHA256:
		if got := sha256.Sum256(body); got != a.payloadHash {
			return fmt.Errorf("body sha256 %x, signed %x: %w", got, a.payloadHash, ErrPayloadMismatch)
		}
		return nil
	}
	return fmt.Errorf("CheckPayload in mode %s: %w", a.Mode, errWrongMode)
}

// NewBodyReader returns a reader of the decoded body for any mode, for
// bodies too large to hold in memory:
//   - PayloadUnsigned: body itself;
//   - PayloadSHA256: body, hashed as it is read; at the end, instead of
//     io.EOF, Read returns an error wrapping ErrPayloadMismatch if the hash is
//     not the signed one. The bytes are returned before they can be checked:
//     nothing may be committed until io.EOF was seen;
//   - streaming modes: NewChunkedReader(body).
func (a *Auth) NewBodyReader(body io.Reader) io.Reader {
	switch a.Mode {
	case PayloadUnsigned:
		return body
	case PayloadSHA256:
		return &hashReader{r: body, h: sha256.New(), want: a.payloadHash}
	}
	return a.NewChunkedReader(body)
}

type hashReader struct {
	r    io.Reader
	h    hash.Hash
	want [32]byte
	err  error // sticky, once the end was reached
}

func (r *hashReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		var got [32]byte
		r.h.Sum(got[:0])
		if got != r.want {
			err = fmt.Errorf("body sha256 %x, signed %x: %w", got, r.want, ErrPayloadMismatch)
		}
		r.err = err
	}
	return n, err
}
