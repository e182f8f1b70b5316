package layout

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", name, got)
	}
}

func readHex(t testing.TB, name string) []byte {
	t.Helper()
	h, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenHistory is a small history exercising every field of the format.
func goldenHistory(t testing.TB) *History {
	h := NewHistory(2)
	for i, r := range []*Role{role("dc1", 1), role("dc2", 2), {Zone: "dc2", CapacityBytes: 3 << 40, Tags: []string{"ssd", "rack 4"}}, {Zone: "dc1"}} {
		if err := h.StageRole(NodeID{byte(i + 1), 0xaa}, r, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Apply(1, 1001); err != nil {
		t.Fatal(err)
	}
	h.StageRole(NodeID{5, 0xaa}, role("dc3", 1), 1002)
	h.StageRole(NodeID{2, 0xaa}, nil, 1003)
	if _, err := h.Apply(2, 1004); err != nil {
		t.Fatal(err)
	}
	h.StageRole(NodeID{6, 0xaa}, role("dc3", 5), 1005)
	h.StageRole(NodeID{3, 0xaa}, nil, 1005)
	h.StageParameters(Parameters{ZoneRedundancy: 1}, 1006)
	for _, id := range h.Current().Nodes() {
		h.SetAck(id, 2)
		h.SetSync(id, 1)
	}
	h.SetSyncAck(NodeID{1, 0xaa}, 1)
	return h
}

// TestHistoryGolden pins the history format byte for byte, and with it the
// assignment the algorithm computes, and the report of a preview.
func TestHistoryGolden(t *testing.T) {
	h := goldenHistory(t)
	b := h.Encode(nil)
	golden(t, "history_v1.hex", []byte(hex.EncodeToString(b)+"\n"))
	got, err := DecodeHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("round trip differs")
	}
	pv, err := h.Preview()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview.txt", []byte(strings.Join(pv.Messages, "\n")+"\n"))
}

// TestDecodeLayoutV1 reads a single-node layout written by the first
// version of this package: nodes persisted it before histories existed.
func TestDecodeLayoutV1(t *testing.T) {
	b := readHex(t, "layout_v1.hex")
	want := SingleNode(NodeID{1, 2, 3}, Role{Zone: "dc1", CapacityBytes: 1 << 40, Tags: []string{"home"}})
	l, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("Decode(v1) = %+v, want %+v", l, want)
	}
	h, err := DecodeHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, HistoryFrom(want)) {
		t.Errorf("DecodeHistory(v1) = %+v", h)
	}
	for i := range len(b) {
		if _, err := DecodeHistory(b[:i]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("DecodeHistory of %d of %d bytes: %v", i, len(b), err)
		}
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	var snaps []*History
	for i, h := range randomHistories(t, 42, 120) {
		if i%4 == 0 {
			snaps = append(snaps, h)
		}
	}
	snaps = append(snaps, NewHistory(1), HistoryFrom(SingleNode(NodeID{1}, Role{Zone: "z", CapacityBytes: 1 << 30})), goldenHistory(t))
	for i, h := range snaps {
		b := h.Encode(nil)
		got, err := DecodeHistory(b)
		if err != nil {
			t.Fatalf("history %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("history %d: round trip differs:\n%+v\n%+v", i, got, h)
		}
		// Every truncation is refused, never a panic: a sample of them,
		// since each decode is linear.
		for k := range 30 {
			j := k * len(b) / 30
			if _, err := DecodeHistory(b[:j]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("history %d: decode of %d of %d bytes: %v", i, j, len(b), err)
			}
		}
	}
}

// TestDecodeHistoryRejects: bytes breaking an invariant are refused.
func TestDecodeHistoryRejects(t *testing.T) {
	h := goldenHistory(t)
	bad := map[string]func(h *History){
		"no versions":      func(h *History) { h.Versions = nil },
		"gap":              func(h *History) { h.Versions = []*Layout{h.OldVersions[0], h.Current()} },
		"old after active": func(h *History) { h.OldVersions = []*Layout{h.Current()} },
		"two rfs": func(h *History) {
			l := *h.OldVersions[0]
			l.ReplicationFactor = 1
			h.OldVersions = []*Layout{&l}
		},
		"staged zr above rf": func(h *History) { h.Staging.Parameters.ZoneRedundancy = 3 },
		"staged empty zone":  func(h *History) { h.Staging.Roles[NodeID{9}] = StagedRole{Role: &Role{}} },
		"staged zero id":     func(h *History) { h.Staging.Roles[NodeID{}] = StagedRole{} },
	}
	for name, f := range bad {
		c := h.Clone()
		if name == "no versions" {
			// Encode needs no version to write none.
			c.Versions = nil
			b := c.Encode(nil)
			if _, err := DecodeHistory(b); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		f(c)
		if _, err := DecodeHistory(c.Encode(nil)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, b := range [][]byte{nil, {0}, {4}, {formatHistoryV1}, append(h.Encode(nil), 0)} {
		if _, err := DecodeHistory(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeHistory(%x…): %v", b[:min(len(b), 4)], err)
		}
	}
}

func FuzzDecodeHistory(f *testing.F) {
	f.Add(goldenHistory(f).Encode(nil))
	f.Add(NewHistory(3).Encode(nil))
	f.Add(readHex(f, "layout_v1.hex"))
	f.Add(SingleNode(NodeID{1}, Role{Zone: "z", CapacityBytes: 5 << 30}).Encode(nil))
	for _, h := range randomHistories(f, 7, 30)[20:] {
		f.Add(h.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHistory(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		b2 := h.Encode(nil)
		h2, err := DecodeHistory(b2)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !reflect.DeepEqual(h, h2) || !bytes.Equal(h2.Encode(nil), b2) {
			t.Fatal("decode→encode→decode is not stable")
		}
		// Whatever decodes can be merged and pruned.
		c := h.Clone()
		if c.Merge(h2) {
			t.Fatal("merging an equal history changed it")
		}
		c.Prune()
		c.AllNodes()
		c.MinAck()
	})
}
