package rpc

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// expectRefused sends raw bytes to n and checks that n answers nothing
// beyond what answered allows and closes, and registers no connection.
func expectRefused(t *testing.T, n *node, send []byte, maxReply int) {
	t.Helper()
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(send); err != nil {
		t.Fatal(err)
	}
	if tc, ok := nc.(*net.TCPConn); ok && maxReply == 0 {
		tc.CloseWrite() // a truncated handshake: the responder sees EOF
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("responder did not close: %v", err)
	}
	if len(reply) > maxReply {
		t.Fatalf("responder sent %d bytes, want at most %d", len(reply), maxReply)
	}
	if got := len(n.Conns()); got != 0 {
		t.Fatalf("responder has %d conns", got)
	}
	if got := n.connects.Load(); got != 0 {
		t.Fatalf("OnConnect called %d times", got)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

func TestHandshakeWrongSecret(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, nil)
	b := startNode(t, echo, func(c *Config) { c.Secret[0] ^= 1 })
	_, err := b.Dial(context.Background(), a.ID(), a.addr)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial with the wrong secret: %v, want ErrHandshake", err)
	}
	time.Sleep(20 * time.Millisecond)
	for _, n := range []*node{a, b} {
		if len(n.Conns()) != 0 || n.connects.Load() != 0 {
			t.Fatalf("a node registered a connection")
		}
	}
}

func TestHandshakeWrongID(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, nil)
	b := startNode(t, echo, nil)
	other := startNode(t, echo, nil)
	_, err := b.Dial(context.Background(), other.ID(), a.addr)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial of the wrong ID: %v, want ErrHandshake", err)
	}
	if len(a.Conns()) != 0 || len(b.Conns()) != 0 || a.connects.Load() != 0 {
		t.Fatal("a node registered a connection")
	}
}

func TestHandshakeGarbage(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, func(c *Config) { c.HandshakeTimeout = time.Second })
	msg1 := captureMsg1(t, a)
	cases := map[string][]byte{
		"random":            randBytes(300),
		"random long":       randBytes(70000),
		"empty":             nil,
		"preamble only":     msg1[:preambleLen],
		"truncated msg1":    msg1[:len(msg1)-10],
		"wrong protocol":    append([]byte("grange-rpc/9"), msg1[len(protocolName):]...),
		"unknown suite":     append(append([]byte(protocolName), 7), msg1[preambleLen:]...),
		"flipped bit":       flip(msg1, len(msg1)-1),
		"huge length":       append(append([]byte(protocolName), msg1[len(protocolName)], 0xff, 0xff), randBytes(100)...),
		"zero length":       append(append([]byte(protocolName), msg1[len(protocolName)], 0, 0), randBytes(100)...),
		"other suite label": append(append([]byte(protocolName), otherSuite(msg1[len(protocolName)])), msg1[preambleLen:]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) { expectRefused(t, a, b, 0) })
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

func otherSuite(s byte) byte {
	if s == suiteAESGCM {
		return suiteChaChaPoly
	}
	return suiteAESGCM
}

// captureMsg1 returns the preamble and msg1 of a real dial to n by a node
// whose transport is then closed.
func captureMsg1(t *testing.T, n *node) []byte {
	rec, _ := recordDial(t, n)
	return rec[:preambleLen+2+int(rec[preambleLen])<<8+int(rec[preambleLen+1])]
}

// recordDial dials n from a throwaway node through a recording network,
// makes a call, closes the throwaway node, waits for n to notice, and
// returns all bytes the initiator wrote.
func recordDial(t testing.TB, n *node) (all []byte, calls int) {
	t.Helper()
	var rn recordingNetwork
	key, _ := ecdh.X25519().GenerateKey(rand.Reader)
	tr, err := New(Config{Key: key, Secret: testSecret, Network: &rn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Dial(context.Background(), n.ID(), n.addr); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Call(context.Background(), n.ID(), &Request{Endpoint: "echo", Body: []byte("secret")}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	waitFor(t, "responder to drop the conn", func() bool { return len(n.Conns()) == 0 && n.disconnects.Load() == n.connects.Load() })
	n.connects.Store(0)
	n.disconnects.Store(0)
	return rn.conns[0].bytes(), 1
}

func TestHandshakeReplay(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	rec, _ := recordDial(t, a)
	msg1 := rec[:preambleLen+2+int(rec[preambleLen])<<8+int(rec[preambleLen+1])]
	if bytes.Contains(rec, []byte("secret")) {
		t.Fatal("call body visible on the wire")
	}
	// The whole session replayed: msg2 comes back (the responder cannot
	// tell yet), but the hello record does not decrypt under the new keys.
	t.Run("session", func(t *testing.T) { expectRefused(t, a, rec, 2+48) })
	// msg1 alone: msg2 comes back, then the responder waits for a hello
	// that never comes and gives up after HandshakeTimeout.
	t.Run("msg1", func(t *testing.T) { expectRefusedOpen(t, a, msg1, 2+48) })
}

// expectRefusedOpen is expectRefused without half-closing: the responder
// must give up by itself.
func expectRefusedOpen(t *testing.T, n *node, send []byte, maxReply int) {
	t.Helper()
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(send); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	reply, err := io.ReadAll(nc)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("responder did not time out the handshake")
	}
	if len(reply) > maxReply {
		t.Fatalf("responder sent %d bytes, want at most %d", len(reply), maxReply)
	}
	if len(n.Conns()) != 0 || n.connects.Load() != 0 {
		t.Fatal("responder registered a connection")
	}
}

func TestPendingHandshakeLimit(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, func(c *Config) { c.MaxPendingHandshakes = 2; c.HandshakeTimeout = 2 * time.Second })
	var held []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", a.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		held = append(held, nc)
	}
	waitFor(t, "two pending handshakes", func() bool { return len(a.handshakes) == 2 })
	// A third is dropped at once.
	nc, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(time.Second))
	_, err = nc.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("third handshake not dropped: %v", err)
	}
	nc.Close()
	for _, nc := range held {
		nc.Close()
	}
	// Real nodes get through once the slots free up.
	b := startNode(t, echo, nil)
	waitFor(t, "slots", func() bool { return len(a.handshakes) == 0 })
	dial(t, b, a)
}

// TestTransportCipherInterop checks the in-place cipher against flynn/noise.
func TestTransportCipherInterop(t *testing.T) {
	for _, suite := range []byte{suiteAESGCM, suiteChaChaPoly} {
		cs, _ := noiseSuite(suite)
		var k [32]byte
		rand.Read(k[:])
		ref := noise.UnsafeNewCipherState(cs, k, 0)
		ours := newTransportCipher(suite, noise.UnsafeNewCipherState(cs, k, 0))
		refDec := noise.UnsafeNewCipherState(cs, k, 0)
		for i := range 3 {
			msg := randBytes(100 + i)
			want, _ := ref.Encrypt(nil, nil, msg)
			buf := make([]byte, len(msg), len(msg)+tagLen)
			copy(buf, msg)
			got, err := ours.seal(buf)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("suite %d message %d: sealed differently", suite, i)
			}
			pt, err := refDec.Decrypt(nil, nil, got)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("suite %d: reference cannot decrypt", suite)
			}
		}
	}
}

func TestBothSuites(t *testing.T) {
	checkNoLeak(t)
	defer func(s byte) { preferredSuite = s }(preferredSuite)
	for _, suite := range []byte{suiteAESGCM, suiteChaChaPoly} {
		preferredSuite = suite
		a := startNode(t, echo, nil)
		b := startNode(t, echo, nil)
		dial(t, a, b)
		body := randBytes(200000)
		resp, err := a.Call(context.Background(), b.ID(), &Request{Endpoint: "echo", Body: body})
		if err != nil || !bytes.Equal(resp.Body, body) {
			t.Fatalf("suite %d: %v", suite, err)
		}
	}
}
