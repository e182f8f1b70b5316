package blocks

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// textBytes returns n bytes of compressible, text-like data.
func textBytes(seed uint64, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over the lazy dog while a block store keeps every byte it was given and compresses what it can")
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func newCodec(t testing.TB, level int) *Codec {
	t.Helper()
	c, err := NewCodec(level)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	c1, c0 := newCodec(t, 1), newCodec(t, 0)
	cases := []struct {
		name  string
		codec *Codec
		raw   []byte
		want  Compression
	}{
		{"empty", c1, nil, None},
		{"one byte", c1, []byte{7}, None},
		{"small text", c1, []byte("hello, hello, hello, hello, hello, hello"), Zstd},
		{"random 1MiB", c1, randomBytes(1, 1<<20), None},
		{"text 1MiB", c1, textBytes(1, 1<<20), Zstd},
		{"zeros max", c1, make([]byte, MaxBlockSize), Zstd},
		{"random max", c1, randomBytes(2, MaxBlockSize), None},
		{"text level 0", c0, textBytes(2, 1<<20), None},
		{"text level 3", newCodec(t, 3), textBytes(3, 100<<10), Zstd},
		{"text level 19", newCodec(t, 19), textBytes(4, 100<<10), Zstd},
		// 3 % of random data replaced by zeros: zstd saves about that
		// much, and the block is stored compressed only when the saving
		// reaches 1/32.
		{"random mostly", c1, append(randomBytes(5, 1000<<10), make([]byte, 24<<10)...), None},
		{"random enough zeros", c1, append(randomBytes(6, 1000<<10), make([]byte, 40<<10)...), Zstd},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			stored := tc.codec.Encode(bytes.Clone(prefix), tc.raw)
			if !bytes.HasPrefix(stored, prefix) {
				t.Fatalf("Encode did not append to dst")
			}
			stored = stored[len(prefix):]
			h, payload, err := DecodeHeader(stored)
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if h.Compression != tc.want || int(h.RawLen) != len(tc.raw) || int(h.PayloadLen) != len(payload) || h.Version != 1 {
				t.Fatalf("header = %+v, want compression %v and raw length %d", h, tc.want, len(tc.raw))
			}
			if h.Compression == Zstd && len(payload) > len(tc.raw)-len(tc.raw)/32 {
				t.Errorf("compressed payload %d bytes for %d raw: saves less than 1/32", len(payload), len(tc.raw))
			}
			got, err := tc.codec.Decode([]byte("x"), stored)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got[0] != 'x' || !bytes.Equal(got[1:], tc.raw) {
				t.Fatalf("Decode returned %d bytes, want 'x' and %d raw bytes", len(got), len(tc.raw))
			}
		})
	}
}

// TestCodecFormat pins the stored form byte for byte: it is frozen.
func TestCodecFormat(t *testing.T) {
	got := newCodec(t, 0).Encode(nil, []byte("hello"))
	// CRC-32C checked with an independent bitwise implementation.
	want := "47524200010000000000000500000005da5dc11e68656c6c6f"
	if hex.EncodeToString(got) != want {
		t.Fatalf("Encode(hello) = %x, want %s", got, want)
	}
	got = newCodec(t, 1).Encode(nil, bytes.Repeat([]byte("ab"), 100))
	h, payload, err := DecodeHeader(got)
	if err != nil {
		t.Fatal(err)
	}
	if h.Compression != Zstd || h.RawLen != 200 || !bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("header %+v payload %x: want a zstd frame of 200 bytes", h, payload)
	}
	if hex.EncodeToString(got[:8]) != "4752420001010000" {
		t.Fatalf("header starts %x", got[:8])
	}
}

// storedBlock builds a stored form by hand, with a correct CRC, so that
// tests can make headers that Encode never writes.
func storedBlock(comp Compression, rawLen uint32, payload []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(payload))
	copy(b, blockMagic[:])
	b[4] = formatVersion
	b[5] = byte(comp)
	binary.BigEndian.PutUint32(b[8:], rawLen)
	binary.BigEndian.PutUint32(b[12:], uint32(len(payload)))
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[16:], blockCRC(b[:crcCovered], b[HeaderLen:]))
	return b
}

func TestDecodeCorrupt(t *testing.T) {
	c := newCodec(t, 1)
	raw := textBytes(7, 64<<10)
	zstdFrame := func(raw []byte) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(raw, nil)
	}
	withByte := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	good := c.Encode(nil, raw)
	cases := []struct {
		name   string
		stored []byte
		want   string // in the error message
	}{
		{"empty", nil, "shorter than a header"},
		{"truncated header", good[:HeaderLen-1], "shorter than a header"},
		{"truncated payload", good[:len(good)-1], "payload length"},
		{"trailing byte", append(bytes.Clone(good), 0), "payload length"},
		{"magic", withByte(good, 0, 'g'), "bad magic"},
		{"version", storedBlock(None, 0, nil)[:4:4], "shorter"},
		{"future version", withByte(storedBlock(None, 0, nil), 4, 2), "unknown format version 2"},
		{"compression", withByte(storedBlock(None, 0, nil), 5, 2), "unknown compression 2"},
		{"reserved", withByte(storedBlock(None, 0, nil), 7, 1), "reserved"},
		{"raw too large", storedBlock(Zstd, MaxBlockSize+1, []byte{1}), "raw length 8388609 exceeds"},
		{"none lengths differ", storedBlock(None, 4, []byte("abc")), "uncompressed block with raw length 4"},
		{"crc", withByte(good, 16, good[16]^1), "CRC"},
		{"raw length bit", withByte(good, 10, good[10]^1), "CRC"},
		{"payload bit", withByte(good, len(good)/2, good[len(good)/2]^0x80), "CRC"},
		{"not zstd", storedBlock(Zstd, 3, []byte("abc")), "zstd payload"},
		{"zstd shorter than header says", storedBlock(Zstd, uint32(len(raw)+1), zstdFrame(raw)), "zstd payload"},
		{"zstd longer than header says", storedBlock(Zstd, uint32(len(raw)-1), zstdFrame(raw)), "zstd payload"},
		{"zstd two frames", storedBlock(Zstd, uint32(2*len(raw)), append(zstdFrame(raw), zstdFrame(raw)...)), ""},
		{"zstd frame over max", storedBlock(Zstd, MaxBlockSize, zstdFrame(make([]byte, MaxBlockSize+1))), "zstd payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decode([]byte("x"), tc.stored)
			if tc.want == "" {
				// Valid although Encode never writes it: several frames
				// that together make the raw length.
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode error = %q, want it to mention %q", err, tc.want)
			}
			if string(got) != "x" {
				t.Errorf("Decode returned %q on error, want dst unchanged", got)
			}
		})
	}
}

// TestDecodeEveryFlip flips each bit of the header and some of the payload
// of both kinds of blocks: every one must be caught before the content
// hash is needed.
func TestDecodeEveryFlip(t *testing.T) {
	c := newCodec(t, 1)
	for _, raw := range [][]byte{randomBytes(8, 4096), textBytes(8, 4096)} {
		good := c.Encode(nil, raw)
		positions := []int{}
		for i := range HeaderLen + 64 {
			positions = append(positions, i)
		}
		positions = append(positions, len(good)-1)
		for _, i := range positions {
			for bit := range 8 {
				b := bytes.Clone(good)
				b[i] ^= 1 << bit
				if _, err := c.Decode(nil, b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit %d of byte %d flipped: Decode error = %v, want ErrCorrupt", bit, i, err)
				}
			}
		}
	}
}

func TestNewCodecLevels(t *testing.T) {
	for _, level := range []int{-5, 0, 1, 2, 3, 9, 19, 22} {
		c, err := NewCodec(level)
		if err != nil {
			t.Fatalf("NewCodec(%d): %v", level, err)
		}
		if got, want := c.Compresses(), level > 0; got != want {
			t.Errorf("NewCodec(%d).Compresses() = %v, want %v", level, got, want)
		}
	}
	if _, err := NewCodec(23); err == nil {
		t.Errorf("NewCodec(23) succeeded, want an error")
	}
}

func TestEncodePanicsAboveMax(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatalf("Encode of MaxBlockSize+1 bytes did not panic")
		}
	}()
	newCodec(t, 0).Encode(nil, make([]byte, MaxBlockSize+1))
}

// TestCodecAllocs checks the hot path: with room in dst, neither Encode
// nor Decode allocates, whether the block compresses or not.
func TestCodecAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, and the zstd decoder allocates")
	}
	c := newCodec(t, 1)
	for _, raw := range [][]byte{randomBytes(9, 1<<20), textBytes(9, 1<<20)} {
		stored := c.Encode(nil, raw)
		sbuf := make([]byte, 0, 2*len(raw))
		rbuf := make([]byte, 0, 2*len(raw))
		c.Encode(sbuf, raw) // warm the encoders up
		if n := testing.AllocsPerRun(20, func() { c.Encode(sbuf, raw) }); n > 0 {
			t.Errorf("Encode: %v allocations, want 0", n)
		}
		if n := testing.AllocsPerRun(20, func() {
			if _, err := c.Decode(rbuf, stored); err != nil {
				t.Fatal(err)
			}
		}); n > 0 {
			t.Errorf("Decode: %v allocations, want 0", n)
		}
	}
}

func TestCodecConcurrent(t *testing.T) {
	c := newCodec(t, 1)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				raw := textBytes(uint64(g*100+i), 10<<10+i)
				if i%2 == 0 {
					raw = randomBytes(uint64(g*100+i), 10<<10+i)
				}
				got, err := c.Decode(nil, c.Encode(nil, raw))
				if err != nil || !bytes.Equal(got, raw) {
					t.Errorf("goroutine %d block %d: round trip failed: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
