package blocks

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// BenchmarkHash compares the two candidates for Sum on 1 MiB; its numbers
// are in the comment on Sum.
func BenchmarkHash(b *testing.B) {
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{}).Read(data)
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
	b.Run("blake2b", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			blake2b.Sum256(data)
		}
	})
}

func TestHashText(t *testing.T) {
	h := Sum(nil)
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256("")
	if h.String() != empty {
		t.Fatalf("Sum(nil) = %s, want %s", h, empty)
	}
	for _, s := range []string{empty, strings.ToUpper(empty)} {
		got, err := ParseHash(s)
		if err != nil || got != h {
			t.Errorf("ParseHash(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", empty[:63], empty + "0", "g" + empty[1:]} {
		if _, err := ParseHash(s); err == nil {
			t.Errorf("ParseHash(%q) succeeded", s)
		}
	}
	text, _ := h.MarshalText()
	var back Hash
	if err := back.UnmarshalText(text); err != nil || back != h {
		t.Errorf("text round trip: %v, %v", back, err)
	}
	if h.IsZero() || !(Hash{}).IsZero() {
		t.Errorf("IsZero wrong")
	}
	if got := fmt.Sprint(h.LogValue()); got != empty[:16] {
		t.Errorf("LogValue = %s", got)
	}
}

func TestVerify(t *testing.T) {
	raw := []byte("some block")
	h := Sum(raw)
	if err := Verify(h, raw); err != nil {
		t.Fatalf("Verify(Sum(raw), raw) = %v", err)
	}
	if err := Verify(h, []byte("some bloc!")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of other content = %v, want ErrCorrupt", err)
	}
	var zero Hash
	if err := Verify(zero, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify(zero hash, nil) = %v, want ErrCorrupt", err)
	}
}
