package rpc

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/grangeio/grange/cluster/layout"
)

// echoServerEnv makes the test binary an echo server instead of running
// tests: "tcp" echoes roundTripSize-byte messages on a plain connection,
// "rpc" answers an "echo" endpoint. It prints "ID ADDR" on stdout and
// serves until its stdin closes.
const echoServerEnv = "GRANGE_RPC_ECHO_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(echoServerEnv); mode != "" {
		if err := runEchoServer(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runEchoServer(mode string) error {
	ln, err := TCP.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	var id layout.NodeID
	switch mode {
	case "tcp":
		go serveEcho(ln)
	case "rpc":
		key, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		tr, err := New(Config{Key: key, Secret: testSecret, Handler: HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
			return &Response{Body: req.Body}, nil
		})})
		if err != nil {
			return err
		}
		defer tr.Close()
		id = tr.ID()
		go tr.Serve(ln)
	default:
		return fmt.Errorf("unknown echo server mode %q", mode)
	}
	fmt.Printf("%s %s\n", id, ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return nil
}

// startEchoServer starts the test binary as an echo server in its own
// process and returns its node ID and address.
func startEchoServer(b *testing.B, mode string) (layout.NodeID, string) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), echoServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("echo server: %v", err)
	}
	idHex, addr, _ := strings.Cut(strings.TrimSpace(line), " ")
	var id layout.NodeID
	if _, err := hex.Decode(id[:], []byte(idHex)); err != nil {
		b.Fatalf("echo server said %q: %v", line, err)
	}
	return id, addr
}

// BenchmarkRoundTripProcess is BenchmarkRoundTrip with the answering side
// in another process, as between two nodes. It is not the acceptance
// measure (BenchmarkRoundTrip is): across processes both figures are
// dominated by thread wake-ups, and on this 2-vCPU VM the TCP ping-pong is
// bimodal (about 7 µs when both threads stay awake, 40-50 µs when they
// sleep between messages) while a call, which wakes more threads, stays at
// about 42 µs. Ratio:
//
//	go test -run '^$' -bench '^BenchmarkRoundTripProcess$' -count 5 ./cluster/rpc/ |
//	  awk '$1~/Process\/rpc(-[0-9]+)?$/{r+=$3;nr++} $1~/Process\/tcp(-[0-9]+)?$/{t+=$3;nt++} END{printf "rpc/tcp = %.2f\n", (r/nr)/(t/nt)}'
func BenchmarkRoundTripProcess(b *testing.B) {
	b.Run("rpc", func(b *testing.B) {
		id, addr := startEchoServer(b, "rpc")
		x := startNode(b, nil, nil)
		ctx := context.Background()
		if _, err := x.Dial(ctx, id, addr); err != nil {
			b.Fatal(err)
		}
		req := &Request{Endpoint: "echo", Body: make([]byte, roundTripSize)}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := x.Call(ctx, id, req)
			if err != nil || len(resp.Body) != roundTripSize {
				b.Fatal(err)
			}
		}
	})
	b.Run("tcp", func(b *testing.B) {
		_, addr := startEchoServer(b, "tcp")
		c, err := TCP.Dial(context.Background(), addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, roundTripSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
