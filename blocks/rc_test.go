package blocks

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/grangeio/grange/k2v"
)

func TestRefEncoding(t *testing.T) {
	for _, r := range []Ref{
		{Block: Sum([]byte("a")), Owner: []byte("version-1")},
		{Block: Sum([]byte("b")), Owner: nil, Deleted: true},
	} {
		got, err := decodeRef(encodeRef(nil, &r))
		if err != nil {
			t.Fatal(err)
		}
		if got.Block != r.Block || !bytes.Equal(got.Owner, r.Owner) || got.Deleted != r.Deleted {
			t.Fatalf("round trip of %+v gave %+v", r, got)
		}
	}
	for _, bad := range [][]byte{nil, {refVersion}, append([]byte{2, 0}, make([]byte, 32)...), append([]byte{refVersion, 2}, make([]byte, 32)...)} {
		if _, err := decodeRef(bad); err == nil {
			t.Fatalf("decodeRef(%x) accepted", bad)
		}
	}
	// merge: a deletion wins and is final
	var s refSchema
	dst := &Ref{}
	s.Merge(dst, &Ref{Deleted: true})
	s.Merge(dst, &Ref{})
	if !dst.Deleted || !s.IsTombstone(dst) {
		t.Fatal("a merged deletion did not stick")
	}
}

// FuzzDecodeRef: references arrive from other nodes.
func FuzzDecodeRef(f *testing.F) {
	f.Add(encodeRef(nil, &Ref{Block: Sum([]byte("x")), Owner: []byte("o")}))
	f.Add(encodeRef(nil, &Ref{Deleted: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRef(b)
		if err != nil {
			if !errors.Is(err, errCorruptK2V()) {
				t.Fatalf("error %v does not wrap k2v.ErrCorrupt", err)
			}
			return
		}
		if again := encodeRef(nil, r); !bytes.Equal(again, b) {
			t.Fatalf("decode then encode of %x gave %x", b, again)
		}
	})
}

func TestRCAndErrorRecords(t *testing.T) {
	at := time.Unix(1700000000, 123)
	e := rcEntry{count: 7, deletableAt: at}
	got, err := decodeRC(e.encode())
	if err != nil || got.count != 7 || !got.deletableAt.Equal(at) || !got.exists {
		t.Fatalf("rc round trip: %+v, %v", got, err)
	}
	if got, err := decodeRC(nil); err != nil || got.exists || got.count != 0 {
		t.Fatalf("absent rc: %+v, %v", got, err)
	}
	if _, err := decodeRC([]byte{1, 2, 3}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short rc record: %v", err)
	}
	be := BlockError{Hash: Sum([]byte("h")), Failures: 3, LastTry: at, NextTry: at.Add(time.Minute), Message: "no node gave a sound copy"}
	gotE, err := decodeBlockError(be.Hash, encodeBlockError(be))
	if err != nil || gotE.Failures != 3 || !gotE.LastTry.Equal(be.LastTry) || !gotE.NextTry.Equal(be.NextTry) || gotE.Message != be.Message {
		t.Fatalf("error record round trip: %+v, %v", gotE, err)
	}
	// queue keys sort by time
	h := Sum([]byte("q"))
	if bytes.Compare(queueKey(at, h), queueKey(at.Add(time.Nanosecond), Hash{})) >= 0 {
		t.Fatal("queue keys do not sort by time first")
	}
	if end := prefixEnd([]byte("ab\xff")); !bytes.Equal(end, []byte("ac")) {
		t.Fatalf("prefixEnd = %q", end)
	}
}

func errCorruptK2V() error { return k2v.ErrCorrupt }
