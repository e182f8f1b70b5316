package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterNode is a `grange server -c FILE` process of a test cluster.
type clusterNode struct {
	conf   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// syncBuffer collects a process's stderr for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePorts returns n loopback ports free at the time of the call.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startClusterNode writes the configuration of node i and runs it.
func startClusterNode(t *testing.T, bin string, i int, secret string, ports []int) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "grange.toml")
	text := fmt.Sprintf(`metadata_dir = %q
data_dir = %q
replication_factor = 3
rpc_secret = %q
rpc_bind_addr = "127.0.0.1:%d"
rpc_public_addr = "127.0.0.1:%d"

[k2v_api]
api_bind_addr = "127.0.0.1:%d"

[admin]
api_bind_addr = "127.0.0.1:%d"
admin_token = "token-of-node-%d"
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), secret, ports[0], ports[0], ports[1], ports[2], i)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "-c", conf, "--log-level", "info")
	n := &clusterNode{conf: conf, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = n.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "admin API") {
				seen = true
				close(banner)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-n.done
	})
	select {
	case <-banner:
	case <-n.done:
		t.Fatalf("node %d exited before its banner: %v\n%s", i, n.err, n.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("node %d: no banner after 60 s\n%s", i, n.stderr)
	}
	return n
}

// Three processes joined and laid out with the CLI verbs only: node id,
// node connect, status, layout assign/show/apply. Every node must then
// report layout version 1 and see the two others up.
// scripts/three-node-cluster.sh runs the same sequence by hand.
func TestThreeNodeClusterWithCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the grange binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	ports := freePorts(t, 9)
	var nodes []*clusterNode
	for i := range 3 {
		nodes = append(nodes, startClusterNode(t, bin, i+1, secret, ports[3*i:3*i+3]))
	}
	logs := func() string {
		var b strings.Builder
		for i, n := range nodes {
			fmt.Fprintf(&b, "\n---- stderr of node %d ----\n%s", i+1, n.stderr)
		}
		return b.String()
	}
	// cli runs a verb against node i (0-based) and returns its stdout.
	cli := func(i int, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-c", nodes[i].conf}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return stdout.String(), fmt.Errorf("grange %s on node %d: %v\n%s%s", strings.Join(args, " "), i+1, err, stdout.String(), stderr.String())
		}
		return stdout.String(), nil
	}
	mustCLI := func(i int, args ...string) string {
		t.Helper()
		out, err := cli(i, args...)
		if err != nil {
			t.Fatalf("%v%s", err, logs())
		}
		return out
	}
	// waitFor polls a verb on node i until ok accepts its output.
	waitFor := func(what string, i int, ok func(string) bool, args ...string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := cli(i, args...)
			if err == nil && ok(out) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: %s: not after 30 s; last `grange %s`: %v\n%s%s", i+1, what, strings.Join(args, " "), err, out, logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	peer := regexp.MustCompile(`^([0-9a-f]{64})@(127\.0\.0\.1:\d+)\n$`)
	var ids, peers []string
	for i := range nodes {
		out := mustCLI(i, "node", "id", "-q")
		m := peer.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("node id on node %d: %q", i+1, out)
		}
		ids, peers = append(ids, m[1]), append(peers, m[1]+"@"+m[2])
	}
	mustCLI(0, "node", "connect", peers[1], peers[2])

	// allUp accepts a status listing every node as up.
	allUp := func(out string) bool {
		for _, id := range ids {
			if !regexp.MustCompile(`(?m)^` + id[:16] + `\s.*\sup\s`).MatchString(out) {
				return false
			}
		}
		return true
	}
	waitFor("all three nodes up", 0, allUp, "status")

	for i, id := range ids {
		mustCLI(0, "layout", "assign", "-z", fmt.Sprintf("dc%d", i+1), "-c", "1G", id[:10])
	}
	out := mustCLI(0, "layout", "show")
	if !strings.Contains(out, "grange layout apply --version 1") || !strings.Contains(out, "NEW CLUSTER LAYOUT AFTER APPLYING THE CHANGES (version 1)") {
		t.Fatalf("layout show before apply:\n%s%s", out, logs())
	}
	mustCLI(0, "layout", "apply", "--version", "1")

	for i := range nodes {
		waitFor("layout version 1", i, func(out string) bool {
			return strings.Contains(out, "CURRENT CLUSTER LAYOUT (version 1)") && strings.Count(out, " 256 ") >= 3
		}, "layout", "show")
		st := waitFor("layout version 1 and every node up", i, func(out string) bool {
			return strings.Contains(out, "NODES (layout version 1)") && allUp(out)
		}, "status")
		t.Logf("status on node %d:\n%s", i+1, st)
	}
	t.Logf("layout history on node 3:\n%s", mustCLI(2, "layout", "history"))

	// a key made on node 1 reaches the others (the catalog is a full copy)
	key := regexp.MustCompile(`GK[0-9a-f]{24}`).FindString(mustCLI(0, "key", "create", "ci"))
	if key == "" {
		t.Fatalf("key create printed no key ID%s", logs())
	}
	for i := range nodes {
		waitFor("the key on every node", i, func(out string) bool { return strings.Contains(out, key) }, "key", "list")
	}

	out = mustCLI(1, "repair", "tables")
	if !regexp.MustCompile(`syncing tables: (\d+)/(\d+) partitions\n`).MatchString(out) || !strings.Contains(out, "Table repair done; layout version 1 synced on this node.") {
		t.Fatalf("repair tables:\n%s%s", out, logs())
	}
	if out := mustCLI(0, "layout", "skip-dead-nodes", "--version", "1"); !strings.Contains(out, "No storage node is down") {
		t.Fatalf("skip-dead-nodes with every node up:\n%s", out)
	}
}
