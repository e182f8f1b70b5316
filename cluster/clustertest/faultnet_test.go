package clustertest

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// pair connects host a to host b and returns both ends.
func pair(t *testing.T, a, b *FaultHost) (ac, bc net.Conn) {
	t.Helper()
	if _, err := a.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ln, err := b.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ac, err = a.Dial(context.Background(), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	bc = <-accepted
	t.Cleanup(func() { ac.Close(); bc.Close() })
	return ac, bc
}

func TestFaultNetDelayKeepsOrder(t *testing.T) {
	f := NewFaultNet()
	a, b := f.Host(), f.Host()
	ac, bc := pair(t, a, b)
	f.SetDelay(a.Addr(), b.Addr(), 100*time.Millisecond)
	start := time.Now()
	var want []byte
	for i := range 50 {
		if i == 25 {
			f.SetDelay(a.Addr(), b.Addr(), 0) // later bytes must not overtake
		}
		msg := []byte{byte(i), byte(i), byte(i)}
		want = append(want, msg...)
		if _, err := ac.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(bc, got); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("delayed bytes arrived after %v", d)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes reordered: %v", got)
	}
	// the other direction is not delayed
	start = time.Now()
	bc.Write([]byte("x"))
	io.ReadFull(ac, got[:1])
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("undelayed direction took %v", d)
	}
}

func TestFaultNetPartition(t *testing.T) {
	f := NewFaultNet()
	a, b := f.Host(), f.Host()
	ac, bc := pair(t, a, b)
	f.Partition([]string{a.Addr()})
	ac.Write([]byte("lost"))
	bc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4)
	if n, err := bc.Read(buf); err == nil {
		t.Fatalf("read %q across a partition", buf[:n])
	}
	f.Heal()
	bc.SetReadDeadline(time.Time{})
	ac.Write([]byte("seen"))
	if _, err := io.ReadFull(bc, buf); err != nil || string(buf) != "seen" {
		t.Fatalf("after heal: %q %v", buf, err)
	}
	// one-way drop: b→a only
	f.SetDrop(b.Addr(), a.Addr(), true)
	bc.Write([]byte("drop"))
	ac.Write([]byte("pass"))
	if _, err := io.ReadFull(bc, buf); err != nil || string(buf) != "pass" {
		t.Fatalf("a→b during b→a drop: %q %v", buf, err)
	}
	ac.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := ac.Read(buf); err == nil {
		t.Fatalf("read %q across a one-way drop", buf[:n])
	}
}
