package rpc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func FuzzFrameDecode(f *testing.F) {
	var seed []byte
	seed = appendFrame(seed, frameHello, 0, 0, []byte{1})
	rh := requestHeader{Endpoint: "k2v/insert", Priority: Normal, Stream: true, Timeout: time.Second, BodyLen: 3}
	seed = appendFrame(seed, frameRequest, 0, 1, rh.appendTo(nil))
	seed = appendFrame(seed, frameData, 0, 1, []byte("abc"))
	seed = appendFrame(seed, frameData, flagFin, 1, nil)
	seed = appendFrame(seed, frameWindow, 0, 1, []byte{0, 1, 0, 0})
	seed = appendFrame(seed, frameReset, 0, 3, []byte{resetCancel})
	seed = appendFrame(seed, frameGoAway, 0, 0, nil)
	seed = appendFrame(seed, frameClose, 0, 0, nil)
	f.Add(seed)
	f.Add([]byte{})
	f.Add(seed[:13])
	f.Fuzz(func(t *testing.T, b []byte) {
		in := b
		var out []byte
		for len(b) > 0 {
			h, payload, rest, err := decodeFrame(b)
			if err != nil {
				return
			}
			if len(rest) >= len(b) || h.length != len(payload) {
				t.Fatalf("no progress or wrong length")
			}
			out = appendFrame(out, h.typ, h.flags, h.stream, payload)
			b = rest
		}
		// A record that decodes re-encodes to itself.
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip:\n%x\n%x", in, out)
		}
	})
}

// FuzzHeaderDecode covers the request and response header codecs: the
// first byte picks which.
func FuzzHeaderDecode(f *testing.F) {
	rq := requestHeader{Endpoint: "blocks/get", Priority: Background, Timeout: 5 * time.Second, BodyLen: 1 << 20}
	f.Add(append([]byte{0}, rq.appendTo(nil)...))
	rq = requestHeader{Endpoint: "x", Stream: true}
	f.Add(append([]byte{0}, rq.appendTo(nil)...))
	rs := responseHeader{BodyLen: 100, Stream: true}
	f.Add(append([]byte{1}, rs.appendTo(nil)...))
	rs = responseHeader{Error: true, Message: "not found"}
	f.Add(append([]byte{1}, rs.appendTo(nil)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		which, b := b[0], b[1:]
		if which&1 == 0 {
			h, err := decodeRequestHeader(b)
			if err != nil {
				return
			}
			if h.Priority > Background || h.BodyLen < 0 || h.BodyLen > maxBodyLen || h.Timeout < 0 || len(h.Endpoint) > maxEndpointLen {
				t.Fatalf("decoded out of range: %+v", h)
			}
			if out := h.appendTo(nil); !bytes.Equal(out, b) {
				t.Fatalf("request round trip:\n%x\n%x", b, out)
			}
			return
		}
		h, err := decodeResponseHeader(b)
		if err != nil {
			return
		}
		if h.BodyLen < 0 || h.BodyLen > maxBodyLen || len(h.Message) > maxErrorMessage || h.Error && (h.Stream || h.BodyLen > 0) {
			t.Fatalf("decoded out of range: %+v", h)
		}
		if out := h.appendTo(nil); !bytes.Equal(out, b) {
			t.Fatalf("response round trip:\n%x\n%x", b, out)
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to a responder: it must never panic,
// and never complete msg1 unless given a real one (a replay, which the
// hello then stops).
func FuzzHandshake(f *testing.F) {
	n := startNode(f, echo, nil)
	rec, _ := recordDial(f, n)
	msg1 := rec[:preambleLen+2+int(rec[preambleLen])<<8+int(rec[preambleLen+1])]
	f.Add(rec)
	f.Add(msg1)
	f.Add([]byte(protocolName))
	f.Fuzz(func(t *testing.T, b []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			client.Write(b)
			client.Close() // EOF after b; a valid msg1 then fails writing msg2
		}()
		server.SetDeadline(time.Now().Add(time.Second))
		_, _, _, err := n.serverHandshake(server)
		server.Close()
		client.Close()
		<-done
		if (err == nil || errors.Is(err, io.ErrClosedPipe)) && !bytes.HasPrefix(b, msg1) {
			t.Fatalf("handshake accepted fuzzed bytes: %v", err)
		}
	})
}
