package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxChunkBytes is the largest aws-chunked chunk accepted. A signed chunk is
// held in memory until its signature is checked, so this bounds the memory
// of a ChunkedReader. AWS SDKs send 64 KiB to 1 MiB chunks.
const MaxChunkBytes = 16 << 20

const (
	maxTrailers        = 16
	chunkReaderBufSize = 4096 // also bounds one framing or trailer line
	trailerSigName     = "x-amz-trailer-signature"
	chunkSigPrefix     = "chunk-signature="
)

// emptySHA256 is hex(sha256("")), the hash of the (absent) chunk headers.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// ChunkedReader decodes an aws-chunked body and checks its signatures.
//
// The format follows the AWS S3 documentation ("Signature Calculations for
// the Authorization Header: Transferring Payload in Multiple Chunks", and the
// same with trailing headers). A body is a sequence of chunks ending with a
// chunk of size 0, then a trailer section (at most 16 lines) ending with an
// empty line; nothing may follow. Every line ends with CRLF (a bare LF is an
// error). Sizes are hexadecimal without sign or prefix, either case, at most
// MaxChunkBytes. Chunk extensions other than the one chunk-signature of the
// signed modes are rejected.
//
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD:
//
//	<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n   (repeated)
//	0;chunk-signature=<64 hex>\r\n
//	\r\n
//
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the same chunks, then
//
//	0;chunk-signature=<64 hex>\r\n
//	<name>:<value>\r\n                                  (trailing headers, e.g. x-amz-checksum-crc32)
//	x-amz-trailer-signature:<64 hex>\r\n
//	\r\n
//
// STREAMING-UNSIGNED-PAYLOAD-TRAILER:
//
//	<hex size>\r\n<data>\r\n                            (repeated)
//	0\r\n
//	<name>:<value>\r\n                                  (trailing headers)
//	\r\n
//
// The signature of chunk i is HMAC(signing key, string to sign) with
//
//	AWS4-HMAC-SHA256-PAYLOAD\n<amz date>\n<scope>\n<signature of chunk i-1>\n<hex sha256("")>\n<hex sha256(data)>
//
// where "chunk -1" is the request's own (seed) signature; the final empty
// chunk is signed too. The trailer signature is HMAC(signing key, …) of
//
//	AWS4-HMAC-SHA256-TRAILER\n<amz date>\n<scope>\n<signature of the final chunk>\n<hex sha256(trailing headers)>
//
// where the trailing headers are hashed as "name:value\n" each, in the order
// received, names lowercased and values trimmed. Because each signature
// chains the previous one, chunks cannot be dropped, reordered or replayed
// from another request.
//
// Read returns only bytes of chunks whose signature was verified (in the
// signed modes); memory is bounded by one chunk, whatever
// the body size. Errors wrap ErrMalformed (framing, truncation, oversize
// chunk) or ErrPayloadMismatch (a chunk or trailer signature); errors of the
// underlying reader other than io.EOF are returned as they are. Errors are
// sticky.
//
// The body given to NewChunkedReader must end where the request body ends
// (e.g. limited by Content-Length): the reader checks that nothing follows
// the final chunk by reading until io.EOF.
//
// A ChunkedReader is not safe for concurrent use.
type ChunkedReader struct {
	mode    PayloadMode
	key     [32]byte
	amzDate string
	scope   string
	prevSig [32]byte

	br       *bufio.Reader
	buf      []byte // signed modes: the current, verified chunk
	off      int    // next byte of buf to return
	left     int    // unsigned mode: bytes of the current chunk still to read
	done     bool   // the final chunk and the trailer section were read
	err      error  // sticky; io.EOF once done
	trailers []Header

	sts []byte // string to sign
	hb  hmacBuf
}

// NewChunkedReader returns a reader of the decoded body in the streaming
// modes. In any other mode the reader fails on its first Read with an error
// that wraps no sentinel (a bug of the caller).
func (a *Auth) NewChunkedReader(body io.Reader) *ChunkedReader {
	c := &ChunkedReader{
		mode:    a.Mode,
		key:     a.signingKey,
		amzDate: a.amzDate,
		scope:   a.scope,
		prevSig: a.seed,
		br:      bufio.NewReaderSize(body, chunkReaderBufSize),
	}
	if !a.Mode.Streaming() {
		c.err = fmt.Errorf("NewChunkedReader in mode %s: %w", a.Mode, errWrongMode)
	}
	return c
}

// Trailers returns the trailing headers (names lowercased, values trimmed)
// once Read has returned io.EOF, nil before. In the signed-trailer mode they
// are covered by the trailer signature; in the unsigned mode they are not,
// and a checksum they carry is the caller's to verify.
func (c *ChunkedReader) Trailers() []Header {
	if !c.done || c.err != io.EOF {
		return nil
	}
	return c.trailers
}

func (c *ChunkedReader) Read(p []byte) (int, error) {
	for {
		if c.off < len(c.buf) {
			n := copy(p, c.buf[c.off:])
			c.off += n
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.left > 0 {
			n, err := c.br.Read(p[:min(len(p), c.left)])
			c.left -= n
			if err == nil && c.left == 0 {
				err = c.expectCRLF()
			}
			if err != nil {
				c.err = framingErr(err)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err := c.nextChunk(); err != nil {
			c.err = err
		}
	}
}

// nextChunk reads the next chunk: its header line and, in the signed modes,
// its data and signature; after the final chunk, the trailer section.
func (c *ChunkedReader) nextChunk() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	signed := c.mode != PayloadStreamingUnsignedTrailer
	size, sig, err := parseChunkLine(line, signed)
	if err != nil {
		return err
	}
	if !signed {
		c.left = size
		if size > 0 {
			return nil
		}
	} else {
		if err := c.readSignedChunk(size, &sig); err != nil {
			// Never hand out bytes whose signature was not checked.
			c.buf, c.off = c.buf[:0], 0
			return err
		}
		c.off = 0
		if size > 0 {
			return nil
		}
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	// Nothing may follow the body: extra bytes would be unsigned.
	if _, err := c.br.ReadByte(); err == nil {
		return fmt.Errorf("aws-chunked: data after the final chunk: %w", ErrMalformed)
	} else if err != io.EOF {
		return err
	}
	c.done = true
	return io.EOF
}

// parseChunkLine parses "<hex size>;chunk-signature=<64 hex>" (signed) or
// "<hex size>" (unsigned).
func parseChunkLine(line []byte, signed bool) (size int, sig [32]byte, err error) {
	sizeHex, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(sizeHex) == 0 {
		return 0, sig, fmt.Errorf("aws-chunked: empty chunk size: %w", ErrMalformed)
	}
	for _, c := range sizeHex {
		d, ok := unhex(c)
		if !ok {
			return 0, sig, fmt.Errorf("aws-chunked: chunk size %q is not hexadecimal: %w", sizeHex, ErrMalformed)
		}
		size = size<<4 | int(d)
		if size > MaxChunkBytes {
			return 0, sig, fmt.Errorf("aws-chunked: chunk larger than %d bytes: %w", MaxChunkBytes, ErrMalformed)
		}
	}
	if !signed {
		if hasExt {
			return 0, sig, fmt.Errorf("aws-chunked: chunk extension in an unsigned body: %w", ErrMalformed)
		}
		return size, sig, nil
	}
	hexSig, ok := bytes.CutPrefix(ext, []byte(chunkSigPrefix))
	if !hasExt || !ok || !decodeHex(sig[:], string(hexSig)) {
		return 0, sig, fmt.Errorf("aws-chunked: chunk without a valid chunk-signature: %w", ErrMalformed)
	}
	return size, sig, nil
}

// readSignedChunk reads the data of a signed chunk of the given size, its
// CRLF, and checks its signature.
func (c *ChunkedReader) readSignedChunk(size int, sig *[32]byte) error {
	if err := c.readData(size); err != nil {
		return err
	}
	if size > 0 {
		if err := c.expectCRLF(); err != nil {
			return err
		}
	}
	return c.checkChunk(sig)
}

// readData reads n bytes of chunk data into c.buf, growing it as the bytes
// arrive rather than trusting the announced size up front.
func (c *ChunkedReader) readData(n int) error {
	c.buf = c.buf[:0]
	for len(c.buf) < n {
		if len(c.buf) == cap(c.buf) {
			want := min(max(2*cap(c.buf), 64<<10), n)
			c.buf = slices.Grow(c.buf, want-len(c.buf))
		}
		end := min(cap(c.buf), n)
		m, err := io.ReadFull(c.br, c.buf[len(c.buf):end])
		c.buf = c.buf[:len(c.buf)+m]
		if err != nil {
			return framingErr(err)
		}
	}
	return nil
}

// checkChunk verifies the signature of the chunk in c.buf and chains it.
func (c *ChunkedReader) checkChunk(sig *[32]byte) error {
	dataHash := sha256.Sum256(c.buf)
	s := append(c.sts[:0], "AWS4-HMAC-SHA256-PAYLOAD\n"...)
	s = append(s, c.amzDate...)
	s = append(s, '\n')
	s = append(s, c.scope...)
	s = append(s, '\n')
	s = hex.AppendEncode(s, c.prevSig[:])
	s = append(s, '\n')
	s = append(s, emptySHA256...)
	s = append(s, '\n')
	s = hex.AppendEncode(s, dataHash[:])
	c.sts = s
	want := hmacSHA256(&c.hb, &c.key, s)
	if !hmac.Equal(want[:], sig[:]) {
		return fmt.Errorf("aws-chunked: bad chunk signature: %w", ErrPayloadMismatch)
	}
	c.prevSig = want
	return nil
}

// readTrailers reads the trailer section up to its empty line and, in the
// signed-trailer mode, checks the trailer signature, which must be the last
// trailing header.
func (c *ChunkedReader) readTrailers() error {
	var sig [32]byte
	haveSig := false
	var canon []byte // trailing headers as hashed: "name:value\n" each
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if haveSig {
			return fmt.Errorf("aws-chunked: trailing header after %s: %w", trailerSigName, ErrMalformed)
		}
		rawName, rawValue, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(rawName) == 0 {
			return fmt.Errorf("aws-chunked: trailing header %q is not name:value: %w", line, ErrMalformed)
		}
		for _, b := range rawName {
			if !isTokenChar(b) {
				return fmt.Errorf("aws-chunked: trailing header name %q: %w", rawName, ErrMalformed)
			}
		}
		name := string(bytes.ToLower(rawName))
		value := TrimOWS(string(rawValue))
		if name == trailerSigName {
			if c.mode != PayloadStreamingSignedTrailer || !decodeHex(sig[:], value) {
				return fmt.Errorf("aws-chunked: unexpected or invalid %s: %w", trailerSigName, ErrMalformed)
			}
			haveSig = true
			continue
		}
		if c.mode == PayloadStreamingSigned {
			return fmt.Errorf("aws-chunked: trailing header in a body without trailer: %w", ErrMalformed)
		}
		if len(c.trailers) == maxTrailers {
			return fmt.Errorf("aws-chunked: more than %d trailing headers: %w", maxTrailers, ErrMalformed)
		}
		c.trailers = append(c.trailers, Header{Name: name, Value: value})
		canon = append(canon, name...)
		canon = append(canon, ':')
		canon = append(canon, value...)
		canon = append(canon, '\n')
	}
	if c.mode != PayloadStreamingSignedTrailer {
		return nil
	}
	if !haveSig {
		return fmt.Errorf("aws-chunked: missing %s: %w", trailerSigName, ErrMalformed)
	}
	h := sha256.Sum256(canon)
	s := append(c.sts[:0], "AWS4-HMAC-SHA256-TRAILER\n"...)
	s = append(s, c.amzDate...)
	s = append(s, '\n')
	s = append(s, c.scope...)
	s = append(s, '\n')
	s = hex.AppendEncode(s, c.prevSig[:])
	s = append(s, '\n')
	s = hex.AppendEncode(s, h[:])
	c.sts = s
	want := hmacSHA256(&c.hb, &c.key, s)
	if !hmac.Equal(want[:], sig[:]) {
		c.trailers = nil
		return fmt.Errorf("aws-chunked: bad trailer signature: %w", ErrPayloadMismatch)
	}
	return nil
}

// readLine returns the next CRLF-terminated line without its CRLF. The
// slice is valid until the next read.
func (c *ChunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("aws-chunked: line longer than %d bytes: %w", chunkReaderBufSize, ErrMalformed)
	case err != nil:
		return nil, framingErr(err)
	}
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, fmt.Errorf("aws-chunked: line not ended by CRLF: %w", ErrMalformed)
	}
	return line, nil
}

// expectCRLF consumes the CRLF that ends chunk data.
func (c *ChunkedReader) expectCRLF() error {
	var b [2]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return framingErr(err)
	}
	if b != [2]byte{'\r', '\n'} {
		return fmt.Errorf("aws-chunked: chunk data not followed by CRLF: %w", ErrMalformed)
	}
	return nil
}

// framingErr turns an early end of the body into ErrMalformed; other errors
// of the underlying reader (timeouts, resets) are the caller's business.
func framingErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("aws-chunked: body truncated: %w", ErrMalformed)
	}
	return err
}
