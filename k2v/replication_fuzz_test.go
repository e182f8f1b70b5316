package k2v

import (
	"bytes"
	"testing"
)

// FuzzReplicationWire feeds arbitrary bytes to every decoder of the table
// replication and K2V cluster RPCs: they come from other nodes, which are
// authenticated but may run another version or be buggy. None may panic,
// and what decodes survives a re-encoding unchanged (the bytes may differ:
// varints have several encodings).
func FuzzReplicationWire(f *testing.F) {
	f.Add(encodeValues([][]byte{[]byte("a"), nil, []byte("xyz")}))
	f.Add(appendScanRequest(nil, []byte("pk"), ScanOptions{Lower: []byte("a"), Upper: []byte("z"), Reverse: true}, 10))
	f.Add((&scanPage{sorts: [][]byte{[]byte("s")}, values: [][]byte{[]byte("v")}, more: true}).appendBinary(nil))
	f.Add(encodeWrites(BucketID{1}, []Write{{Partition: "p", Sort: "s", Context: Clock{{1, 2}}, Value: Value{Data: []byte("v")}}}))
	f.Add(encodeOptional([]byte("v")))
	f.Add(encodeOptionals([][]byte{[]byte("v"), nil, {}}))
	f.Add([]byte{7, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := decodeValues(b); err == nil {
			again, err := decodeValues(encodeValues(v))
			if err != nil || len(again) != len(v) {
				t.Fatalf("values do not survive re-encoding: %v", err)
			}
			for i := range v {
				if !bytes.Equal(again[i], v[i]) {
					t.Fatalf("value %d changed by re-encoding", i)
				}
			}
		}
		if pk, o, max, err := decodeScanRequest(b); err == nil {
			if max < 1 || max > scanPageMax {
				t.Fatalf("scan request of %d entries accepted", max)
			}
			_ = appendScanRequest(nil, pk, o, max)
		}
		if p, err := decodeScanPage(b); err == nil {
			if len(p.sorts) != len(p.values) {
				t.Fatal("scan page with unpaired entries")
			}
			again, err := decodeScanPage(p.appendBinary(nil))
			if err != nil || len(again.sorts) != len(p.sorts) || again.more != p.more {
				t.Fatalf("scan page does not survive re-encoding: %v", err)
			}
		}
		if _, writes, err := decodeWrites(b); err == nil {
			for _, w := range writes {
				if checkKeys(w.Partition, w.Sort) != nil {
					t.Fatal("write with an oversized key accepted")
				}
			}
		}
		if v, err := decodeOptional(b); err == nil {
			if again, err := decodeOptional(encodeOptional(v)); err != nil || !bytes.Equal(again, v) || (again == nil) != (v == nil) {
				t.Fatalf("optional does not survive re-encoding: %v", err)
			}
		}
		if v, err := decodeOptionals(b); err == nil {
			again, err := decodeOptionals(encodeOptionals(v))
			if err != nil || len(again) != len(v) {
				t.Fatalf("optionals do not survive re-encoding: %v", err)
			}
			for i := range v {
				if !bytes.Equal(again[i], v[i]) || (again[i] == nil) != (v[i] == nil) {
					t.Fatalf("optional %d changed by re-encoding", i)
				}
			}
		}
		if _, prefix, err := decodeMerkleRequest(b); err == nil && len(prefix) > 2 {
			t.Fatalf("merkle prefix of %d bytes accepted", len(prefix))
		}
		r := &reader{b: b}
		_ = r.merkleNode()
		_ = r.optString()
		_ = r.clock()
		_ = r.done()
	})
}
