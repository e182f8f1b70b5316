package cluster

import (
	"bytes"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	st := statusMsg{addr: "10.0.0.1:3901", hostname: "nas", layoutVersion: 7, digest: [32]byte{9}}
	var got statusMsg
	if err := got.decode(st.encode(nil)); err != nil || got != st {
		t.Fatalf("status round trip = %+v, %v", got, err)
	}
	list := []peerAddr{{NodeID{1}, "a:1"}, {NodeID{2}, "b:2"}}
	back, err := decodePeerList(encodePeerList(nil, list))
	if err != nil || len(back) != 2 || back[1] != list[1] {
		t.Fatalf("peer list round trip = %v, %v", back, err)
	}
	for _, bad := range [][]byte{nil, {2}, {wireV1}, append(st.encode(nil), 0)} {
		if err := got.decode(bad); err == nil {
			t.Errorf("status %x decoded", bad)
		}
	}
}

func FuzzStatusMsg(f *testing.F) {
	f.Add((&statusMsg{addr: "h:1", hostname: "x", layoutVersion: 3}).encode(nil))
	f.Add([]byte{wireV1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m statusMsg
		if m.decode(b) != nil {
			return
		}
		var m2 statusMsg
		if err := m2.decode(m.encode(nil)); err != nil || m2 != m {
			t.Fatalf("re-decode = %+v, %v", m2, err)
		}
	})
}

func FuzzPeerList(f *testing.F) {
	f.Add(encodePeerList(nil, []peerAddr{{NodeID{1}, "a:1"}}))
	f.Add([]byte{wireV1, 0x80, 0x80, 0x04})
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := decodePeerList(b)
		if err != nil {
			return
		}
		if enc := encodePeerList(nil, list); !bytes.Equal(enc, b) {
			// varints have one canonical encoding only when minimal;
			// re-decoding must still agree
			back, err := decodePeerList(enc)
			if err != nil || len(back) != len(list) {
				t.Fatalf("re-decode = %v, %v", back, err)
			}
		}
	})
}
