package blocks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// FuzzDecodeBlock feeds arbitrary stored forms to DecodeHeader and
// Codec.Decode: they must never panic, must fail with ErrCorrupt, must not
// allocate much more than MaxBlockSize whatever the header claims, and a
// block they accept must survive re-encoding.
func FuzzDecodeBlock(f *testing.F) {
	c1, c0 := newCodec(f, 1), newCodec(f, 0)
	f.Add(c1.Encode(nil, textBytes(1, 2000)))                    // zstd
	f.Add(c1.Encode(nil, randomBytes(1, 300)))                   // none
	f.Add(c0.Encode(nil, textBytes(2, 500)))                     // none, compressible
	f.Add(c1.Encode(nil, nil))                                   // empty
	f.Add(c1.Encode(nil, make([]byte, 1<<20)))                   // zstd, large ratio
	f.Add(c1.Encode(nil, bytes.Repeat(textBytes(3, 1000), 200))) // zstd, several zstd blocks
	two := c1.Encode(nil, textBytes(4, 1000))
	_, p, _ := DecodeHeader(two)
	f.Add(storedBlock(Zstd, 2000, append(bytes.Clone(p), p...))) // two frames
	f.Add(storedBlock(Zstd, MaxBlockSize, p))                    // lies about its length
	f.Add([]byte{})
	f.Add(two[:HeaderLen])

	// allocLimit is what one Decode may allocate: the raw length, then
	// the zstd decoder's own buffers.
	const allocLimit = MaxBlockSize + 2<<20
	check := func(t *testing.T, b []byte) {
		h, payload, herr := DecodeHeader(b)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		raw, derr := c1.Decode(nil, b)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > allocLimit {
			t.Fatalf("Decode allocated %d bytes, limit %d (header %+v)", n, allocLimit, h)
		}
		if herr != nil {
			if !errors.Is(herr, ErrCorrupt) {
				t.Fatalf("DecodeHeader error %v does not wrap ErrCorrupt", herr)
			}
			if derr == nil {
				t.Fatalf("Decode accepted what DecodeHeader refused: %v", herr)
			}
		}
		if derr != nil {
			if !errors.Is(derr, ErrCorrupt) {
				t.Fatalf("Decode error %v does not wrap ErrCorrupt", derr)
			}
			return
		}
		if h.RawLen > MaxBlockSize || int(h.PayloadLen) != len(payload) || len(b) != HeaderLen+len(payload) {
			t.Fatalf("accepted header out of range: %+v with %d bytes", h, len(b))
		}
		if len(raw) != int(h.RawLen) {
			t.Fatalf("Decode returned %d bytes, header says %d", len(raw), h.RawLen)
		}
		// An uncompressed block is what Encode without compression
		// writes, byte for byte.
		if h.Compression == None {
			if again := c0.Encode(nil, raw); !bytes.Equal(again, b) {
				t.Fatalf("uncompressed block re-encodes differently:\n%x\n%x", b, again)
			}
		}
		again, err := c1.Decode(nil, c1.Encode(nil, raw))
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("round trip of the decoded block: %v", err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		// Most mutations break the CRC or the payload length: check
		// the input again with both made right, so that the fuzzer
		// reaches the zstd decoder with forged frames and headers.
		if len(b) >= HeaderLen {
			b = bytes.Clone(b)
			binary.BigEndian.PutUint32(b[12:16], uint32(len(b)-HeaderLen))
			binary.BigEndian.PutUint32(b[16:20], blockCRC(b[:crcCovered], b[HeaderLen:]))
			check(t, b)
		}
	})
}
