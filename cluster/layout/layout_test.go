package layout

import (
	"errors"
	"reflect"
	"testing"
)

func TestSingleNodeRoundTrip(t *testing.T) {
	id := NodeID{1, 2, 3}
	l := SingleNode(id, Role{Zone: "dc1", CapacityBytes: 1 << 40, Tags: []string{"home"}})
	for p := range NumPartitions {
		if r := l.Replicas(Partition(p)); len(r) != 1 || r[0] != id {
			t.Fatalf("partition %d replicas %v", p, r)
		}
	}
	got, err := Decode(l.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Errorf("round trip: %+v != %+v", got, l)
	}
	if !got.IsStorageNode(id) || got.IsStorageNode(NodeID{9}) || len(got.StorageNodes()) != 1 {
		t.Errorf("storage nodes of %+v", got)
	}
	// every truncation is refused, never a panic
	b := l.Encode(nil)
	for i := range len(b) {
		if _, err := Decode(b[:i]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Decode of %d of %d bytes: %v", i, len(b), err)
		}
	}
}

func TestParseNodeID(t *testing.T) {
	id := NodeID{0xab, 0xcd}
	got, err := ParseNodeID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseNodeID(%s) = %v, %v", id, got, err)
	}
	if id.Uint64() != 0xabcd<<48 {
		t.Errorf("Uint64 = %x", id.Uint64())
	}
	for _, bad := range []string{"", "abcd", id.String() + "0", "zz" + id.String()[2:]} {
		if _, err := ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q) accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(SingleNode(NodeID{1}, Role{Zone: "z", CapacityBytes: 5}).Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Decode(b)
		if err == nil {
			l.Encode(nil)
		}
	})
}
