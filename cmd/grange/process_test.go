package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
)

// buildBinary compiles grange once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "grange-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "grange")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

const (
	procKey    = "GKf00dfeedf00dfeedf00dfeed"
	procSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// server is a grange server running as a separate process.
type server struct {
	cmd     *exec.Cmd
	k2vAddr string
	done    chan struct{} // closed when the process exited
	err     error         // its exit status, once done is closed
}

var k2vLine = regexp.MustCompile(`K2V API +http://(\S+)`)

// startProcess runs `grange server --data-dir dir` with loopback ports
// chosen by the kernel and waits for its banner.
func startProcess(t *testing.T, dir string) *server {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--data-dir", dir, "--log-level", "warn")
	cmd.Env = append(os.Environ(),
		"GRANGE_K2V_API_BIND_ADDR=127.0.0.1:0",
		"GRANGE_ADMIN_API_BIND_ADDR=127.0.0.1:0",
		"GRANGE_DEFAULT_ACCESS_KEY="+procKey,
		"GRANGE_DEFAULT_SECRET_KEY="+procSecret,
		"GRANGE_DEFAULT_BUCKET=crash",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := k2vLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	select {
	case s.k2vAddr = <-addr:
	case <-s.done:
		t.Fatalf("server exited before its banner: %v", s.err)
	case <-time.After(60 * time.Second):
		t.Fatal("no banner after 60 s")
	}
	return s
}

func (s *server) client(t *testing.T) *k2vc.Client {
	c, err := k2vc.New(k2vc.Config{Endpoint: "http://" + s.k2vAddr, AccessKeyID: procKey, SecretAccessKey: procSecret, Bucket: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Every insert acknowledged before a kill -9 is there after a restart.
func TestKillNineKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the grange binary")
	}
	dir := t.TempDir()
	s := startProcess(t, dir)
	c := s.client(t)

	var mu sync.Mutex
	acked := map[string]string{} // "pk/sk" → value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pk, sk, v := fmt.Sprintf("w%d", w), fmt.Sprintf("%08d", i), fmt.Sprintf("value %d/%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.InsertItem(ctx, pk, sk, []byte(v), "")
				cancel()
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[pk+"/"+sk] = v
				mu.Unlock()
			}
		})
	}
	// let writes flow, then kill while they are in flight
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 2000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	close(stop)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}

	s2 := startProcess(t, dir)
	c2 := s2.client(t)
	ctx := context.Background()
	for key, want := range acked {
		pk, sk, _ := cut(key)
		it, err := c2.ReadItem(ctx, pk, sk)
		if err != nil {
			t.Fatalf("acknowledged %s lost after kill -9: %v", key, err)
		}
		if len(it.Values) != 1 || string(it.Values[0].Data) != want {
			t.Fatalf("%s after restart = %+v, want %q", key, it.Values, want)
		}
	}
	t.Logf("%d acknowledged writes all present after kill -9 and restart", len(acked))

	// a graceful stop: SIGTERM, exit status 0
	if err := s2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s2.done:
		if s2.err != nil {
			t.Errorf("exit after SIGTERM: %v", s2.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server still running 30 s after SIGTERM")
	}
}

func cut(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}
