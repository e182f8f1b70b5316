package k2v

import (
	"encoding/hex"
	"errors"
	"testing"
)

// Golden vectors of k2v-api.md §4.4: tokens are exchanged with other
// implementations, so their bytes are frozen.
func TestTokenGolden(t *testing.T) {
	tests := []struct {
		name  string
		clock Clock
		hex   string
		token string
	}{
		{"empty", Clock{}, "0000000000000000", "AAAAAAAAAAA"},
		{"one node", Clock{{0x4b8f2a9c1d3e5f60, 1700000000000}},
			"4b8f2b17d2db3760" + "4b8f2a9c1d3e5f60" + "0000018bcfe56800",
			"S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"},
		{"two nodes", Clock{{0x4b8f2a9c1d3e5f60, 1700000000000}, {0xa1b2c3d4e5f60718, 1700000000005}},
			"ea3de948f8c8587d" + "4b8f2a9c1d3e5f60" + "0000018bcfe56800" + "a1b2c3d4e5f60718" + "0000018bcfe56805",
			"6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.clock.AppendBinary(nil)); got != tt.hex {
				t.Errorf("AppendBinary = %s, want %s", got, tt.hex)
			}
			if got := tt.clock.Token(); got != tt.token {
				t.Errorf("Token() = %s, want %s", got, tt.token)
			}
			got, err := ParseToken(tt.token)
			if err != nil {
				t.Fatalf("ParseToken(%s): %v", tt.token, err)
			}
			if len(got) != len(tt.clock) {
				t.Fatalf("ParseToken(%s) = %v, want %v", tt.token, got, tt.clock)
			}
			for i := range got {
				if got[i] != tt.clock[i] {
					t.Errorf("ParseToken(%s) = %v, want %v", tt.token, got, tt.clock)
				}
			}
		})
	}
}

func TestParseTokenRejects(t *testing.T) {
	valid := "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"
	tests := []struct{ name, token string }{
		{"empty string", ""},
		{"padding", "AAAAAAAAAAA="},
		{"standard alphabet", "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz+VoBQ"},
		{"non-zero trailing bits", "AAAAAAAAAAB"},
		{"bad length", "AAAAAAAAAAAAAAA"},
		{"bad checksum", "AAAAAAAAAAE"},
		{"flipped byte", "T48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"},
		{"truncated", valid[:len(valid)-3]},
		{"space", " " + valid},
		{"garbage", "not a token!"},
		{"line break", "S48rF9LbN2BLjyqc\nHT5fYAAAAYvP5WgA"},
	}
	for _, tt := range tests {
		if c, err := ParseToken(tt.token); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: ParseToken(%q) = %v, %v; want ErrBadToken", tt.name, tt.token, c, err)
		}
	}
}

// A node repeated in a token keeps its last time, and the checksum is
// computed over the resulting map (reference behaviour).
func TestParseTokenRepeatedNode(t *testing.T) {
	raw := Clock{{1, 5}}.AppendBinary(nil) // checksum over {1:5}
	raw = append(raw, Clock{{1, 3}}.AppendBinary(nil)[8:]...)
	raw = append(raw, Clock{{1, 5}}.AppendBinary(nil)[8:]...)
	c, err := ParseToken(tokenEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 1 || c[0] != (ClockEntry{1, 5}) {
		t.Errorf("got %v, want [{1 5}]", c)
	}
}

func TestClockNewerThan(t *testing.T) {
	a := Clock{{1, 5}, {2, 3}}
	tests := []struct {
		b    Clock
		want bool
	}{
		{Clock{}, true},
		{Clock{{1, 5}, {2, 3}}, false},
		{Clock{{1, 6}}, true}, // 2:3 > 2:0
		{Clock{{1, 5}, {2, 4}}, false},
		{Clock{{1, 4}, {2, 9}}, true},
		{Clock{{1, 9}, {2, 9}, {3, 9}}, false},
	}
	for _, tt := range tests {
		if got := a.NewerThan(tt.b); got != tt.want {
			t.Errorf("%v.NewerThan(%v) = %v, want %v", a, tt.b, got, tt.want)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAA", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ", "", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseToken(s)
		if err != nil {
			return
		}
		// a valid token re-encodes to a token that parses to the same clock
		c2, err := ParseToken(c.Token())
		if err != nil {
			t.Fatalf("re-encoded token of %q does not parse: %v", s, err)
		}
		if len(c) != len(c2) {
			t.Fatalf("round trip of %q: %v != %v", s, c, c2)
		}
		for i := range c {
			if c[i] != c2[i] || (i > 0 && c[i-1].Node >= c[i].Node) {
				t.Fatalf("round trip of %q: %v != %v", s, c, c2)
			}
		}
	})
}
