package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
)

// LocalClusterConfig configures StartLocalCluster. A zero field means its
// default.
type LocalClusterConfig struct {
	// Binary is the grange executable to run (required; BuildGrange makes
	// one).
	Binary string
	// Nodes is the number of `grange server` processes; default 1. The
	// cluster's replication factor is Nodes, one zone per node.
	Nodes int
	// Dir holds the nodes' configurations, data and logs (nodeN.toml,
	// nodeN/, nodeN.log). "" means a temporary directory that Close
	// removes; a given Dir is kept.
	Dir string
	// NoMetadataFsync sets metadata_fsync = false (default: fsync on, as
	// `grange server`).
	NoMetadataFsync bool
	// LogLevel of the servers; default "warn".
	LogLevel string
	// Bucket is the bucket created for the benchmark key; default
	// "grange-bench".
	Bucket string
	// Timeout bounds each wait of the start (banner, peering, layout,
	// key); default 60s.
	Timeout time.Duration
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

func (c *LocalClusterConfig) defaults() {
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	if c.Bucket == "" {
		c.Bucket = "grange-bench"
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// LocalCluster is a cluster of `grange server -c FILE` processes on
// 127.0.0.1, joined and laid out with the grange CLI as an operator would
// (scripts/three-node-cluster.sh does the same by hand): node id, node
// connect, status, layout assign, layout apply, key import, bucket create,
// bucket allow. It drives the binary only, so that bench imports no server
// package.
type LocalCluster struct {
	// Endpoints are the nodes' K2V API URLs, node 1 first.
	Endpoints []string
	// Credentials and bucket of the benchmark key, allowed to read, write
	// and own Bucket.
	Region, AccessKeyID, SecretAccessKey, Bucket string
	// ProvisionedPerNode reports that the key and bucket created on node 1
	// did not reach the other nodes within a few seconds, so they were
	// created on each node too (catalogs that are not replicated).
	ProvisionedPerNode bool
	// Dir is the cluster's directory.
	Dir string

	cfg     LocalClusterConfig
	tempDir bool
	nodes   []*localNode
}

// localNode is one server process.
type localNode struct {
	conf string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error         // its exit status, once done is closed
	log  string        // file with its stdout and stderr
}

// BuildGrange compiles cmd/grange into dir and returns the executable's
// path. It runs `go build`, so it needs the Go toolchain and a working
// directory inside the grange module (as `go test` has).
func BuildGrange(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "grange")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/grangeio/grange/cmd/grange").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// StartLocalCluster starts cfg.Nodes servers with replication factor
// cfg.Nodes, connects them, applies layout version 1 (one zone and 1G of
// capacity per node), waits until every node has it and sees the others
// up, then creates a key and a bucket and waits until every node's K2V API
// accepts them. On error, what was started is stopped.
func StartLocalCluster(ctx context.Context, cfg LocalClusterConfig) (_ *LocalCluster, err error) {
	cfg.defaults()
	if cfg.Binary == "" {
		return nil, errors.New("bench: local cluster: no grange binary")
	}
	lc := &LocalCluster{Region: "garage", Bucket: cfg.Bucket, Dir: cfg.Dir, cfg: cfg}
	if lc.Dir == "" {
		if lc.Dir, err = os.MkdirTemp("", "grange-cluster"); err != nil {
			return nil, err
		}
		lc.tempDir = true
	} else if err := os.MkdirAll(lc.Dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lc.Close()
		}
	}()
	ports, err := freePorts(3 * cfg.Nodes)
	if err != nil {
		return nil, err
	}
	secret := randomHex(32)
	for i := range cfg.Nodes {
		if err := lc.startNode(ctx, i+1, secret, ports[3*i:3*i+3]); err != nil {
			return nil, err
		}
		lc.Endpoints = append(lc.Endpoints, fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+1]))
	}
	cfg.Logf("%d grange server(s) started in %s", cfg.Nodes, lc.Dir)
	if err := lc.layOut(ctx); err != nil {
		return nil, err
	}
	if err := lc.provision(ctx); err != nil {
		return nil, err
	}
	return lc, nil
}

// K2VConfig returns a workload configuration aimed at every node of the
// cluster, with the benchmark key.
func (lc *LocalCluster) K2VConfig() K2VConfig {
	return K2VConfig{
		Endpoints: lc.Endpoints, Region: lc.Region, Bucket: lc.Bucket,
		AccessKeyID: lc.AccessKeyID, SecretAccessKey: lc.SecretAccessKey,
	}
}

var bannerAdmin = regexp.MustCompile(`admin API +http://`)

// startNode writes the configuration of node i, runs it and waits for its
// banner. The node joins lc.nodes as soon as it runs, for Close.
func (lc *LocalCluster) startNode(ctx context.Context, i int, secret string, ports []int) error {
	dir := filepath.Join(lc.Dir, fmt.Sprintf("node%d", i))
	conf := filepath.Join(lc.Dir, fmt.Sprintf("node%d.toml", i))
	text := fmt.Sprintf(`metadata_dir = %q
data_dir = %q
metadata_fsync = %v
replication_factor = %d
rpc_secret = %q
rpc_bind_addr = "127.0.0.1:%d"
rpc_public_addr = "127.0.0.1:%d"

[k2v_api]
api_bind_addr = "127.0.0.1:%d"

[admin]
api_bind_addr = "127.0.0.1:%d"
admin_token = %q
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), !lc.cfg.NoMetadataFsync, lc.cfg.Nodes,
		secret, ports[0], ports[0], ports[1], ports[2], randomHex(16))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	n := &localNode{conf: conf, done: make(chan struct{}), log: filepath.Join(lc.Dir, fmt.Sprintf("node%d.log", i))}
	logFile, err := os.Create(n.log)
	if err != nil {
		return err
	}
	// Not CommandContext: the servers outlive the start's context and stop
	// in Close.
	n.cmd = exec.Command(lc.cfg.Binary, "server", "-c", conf, "--log-level", lc.cfg.LogLevel)
	n.cmd.Stderr = logFile
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	banner := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if !seen && bannerAdmin.MatchString(sc.Text()) {
				seen = true
				close(banner)
			}
		}
		io.Copy(logFile, stdout)
	}()
	go func() {
		<-copied // Wait closes stdout: read it all first
		n.err = n.cmd.Wait()
		logFile.Close()
		close(n.done)
	}()
	lc.nodes = append(lc.nodes, n)
	select {
	case <-banner:
		return nil
	case <-n.done:
		return fmt.Errorf("node %d exited before its banner: %v%s", i, n.err, tail(n.log))
	case <-time.After(lc.cfg.Timeout):
		return fmt.Errorf("node %d: no banner after %v%s", i, lc.cfg.Timeout, tail(n.log))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CLI runs `grange -c nodeI.toml ARGS...` against node i (1-based) and
// returns its standard output.
func (lc *LocalCluster) CLI(ctx context.Context, i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, lc.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, lc.cfg.Binary, append([]string{"-c", lc.nodes[i-1].conf}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("grange %s on node %d: %v: %s%s", strings.Join(args, " "), i, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// waitFor polls check until it succeeds or lc.cfg.Timeout passes.
func (lc *LocalCluster) waitFor(ctx context.Context, what string, check func() error) error {
	deadline := time.Now().Add(lc.cfg.Timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v: %w", what, lc.cfg.Timeout, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var nodeIDLine = regexp.MustCompile(`^([0-9a-f]{64})@(\S+)\n$`)

// layOut connects the nodes and applies layout version 1.
func (lc *LocalCluster) layOut(ctx context.Context) error {
	var ids, peers []string
	for i := range lc.nodes {
		out, err := lc.CLI(ctx, i+1, "node", "id", "-q")
		if err != nil {
			return err
		}
		m := nodeIDLine.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("grange node id on node %d: %q", i+1, out)
		}
		ids, peers = append(ids, m[1]), append(peers, m[0][:len(m[0])-1])
	}
	if len(peers) > 1 {
		if _, err := lc.CLI(ctx, 1, append([]string{"node", "connect"}, peers[1:]...)...); err != nil {
			return err
		}
	}
	up := make([]*regexp.Regexp, len(ids))
	for i, id := range ids {
		up[i] = regexp.MustCompile(`(?m)^` + id[:16] + `\s.*\sup\s`)
	}
	// status checks that node i lists every node up, and shows want.
	status := func(i int, want string) func() error {
		return func() error {
			out, err := lc.CLI(ctx, i, "status")
			if err != nil {
				return err
			}
			if !strings.Contains(out, want) {
				return fmt.Errorf("no %q in status:\n%s", want, out)
			}
			for j, re := range up {
				if !re.MatchString(out) {
					return fmt.Errorf("node %d not up in status:\n%s", j+1, out)
				}
			}
			return nil
		}
	}
	if err := lc.waitFor(ctx, "node 1 sees every node up", status(1, "")); err != nil {
		return err
	}
	for i, id := range ids {
		if _, err := lc.CLI(ctx, 1, "layout", "assign", "-z", fmt.Sprintf("dc%d", i+1), "-c", "1G", id[:16]); err != nil {
			return err
		}
	}
	if _, err := lc.CLI(ctx, 1, "layout", "apply", "--version", "1"); err != nil {
		return err
	}
	for i := range lc.nodes {
		if err := lc.waitFor(ctx, fmt.Sprintf("node %d has layout version 1", i+1), status(i+1, "NODES (layout version 1)")); err != nil {
			return err
		}
	}
	lc.cfg.Logf("layout version 1 applied: %d node(s), replication factor %d", len(ids), len(ids))
	// The layout change starts an anti-entropy pass on every node: let it
	// end before measuring, so that the figures are those of a settled
	// cluster.
	for i := range lc.nodes {
		if _, err := lc.CLI(ctx, i+1, "repair", "tables"); err != nil {
			return err
		}
	}
	return nil
}

// catalogGrace is how long the other nodes get to learn the key and
// bucket created on node 1 before they are created on each node too.
const catalogGrace = 5 * time.Second

// provision creates the benchmark key and bucket on node 1 and waits until
// every node's K2V API accepts them.
func (lc *LocalCluster) provision(ctx context.Context) error {
	lc.AccessKeyID = "GK" + randomHex(12)
	lc.SecretAccessKey = randomHex(32)
	create := func(i int) error {
		for _, args := range [][]string{
			{"key", "import", "--name", "grange-bench", lc.AccessKeyID, lc.SecretAccessKey},
			{"bucket", "create", lc.Bucket},
			{"bucket", "allow", "--read", "--write", "--owner", lc.Bucket, "--key", lc.AccessKeyID},
		} {
			if _, err := lc.CLI(ctx, i, args...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := create(1); err != nil {
		return err
	}
	// probe reads an item that does not exist through node i: NoSuchKey
	// means the node knows the key, the bucket and the permission.
	probe := func(i int) error {
		c, err := k2vc.New(k2vc.Config{
			Endpoint: lc.Endpoints[i-1], Region: lc.Region, Bucket: lc.Bucket,
			AccessKeyID: lc.AccessKeyID, SecretAccessKey: lc.SecretAccessKey,
		})
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = c.ReadItem(ctx, "grange-bench-probe", "probe")
		if err == nil || errors.Is(err, k2vc.ErrNoSuchKey) {
			return nil
		}
		return err
	}
	for i := 1; i <= len(lc.nodes); i++ {
		deadline := time.Now().Add(catalogGrace)
		err := probe(i)
		for err != nil && i > 1 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			err = probe(i)
		}
		if err != nil && i > 1 {
			lc.cfg.Logf("node %d does not know the key and bucket of node 1 after %v (%v): creating them there too", i, catalogGrace, err)
			lc.ProvisionedPerNode = true
			if err := create(i); err != nil {
				return err
			}
		}
		if err := lc.waitFor(ctx, fmt.Sprintf("node %d accepts the benchmark key", i), func() error { return probe(i) }); err != nil {
			return err
		}
	}
	lc.cfg.Logf("key %s may use bucket %s on every node", lc.AccessKeyID, lc.Bucket)
	return nil
}

// Close stops the servers (SIGTERM, then SIGKILL after 30 s) and removes
// the cluster's directory if StartLocalCluster created it. It is safe to
// call twice.
func (lc *LocalCluster) Close() error {
	var wg sync.WaitGroup
	errs := make([]error, len(lc.nodes))
	for i, n := range lc.nodes {
		wg.Go(func() {
			n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
			case <-time.After(30 * time.Second):
				n.cmd.Process.Kill()
				<-n.done
				errs[i] = fmt.Errorf("node %d did not stop within 30 s of SIGTERM: killed", i+1)
			}
		})
	}
	wg.Wait()
	lc.nodes = nil
	if lc.tempDir {
		errs = append(errs, os.RemoveAll(lc.Dir))
		lc.tempDir = false
	}
	return errors.Join(errs...)
}

// freePorts returns n loopback ports free at the time of the call. Another
// process may take one before a server binds it; the server then exits
// with an error, which StartLocalCluster reports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(bytes int) string {
	b := make([]byte, bytes)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns the end of a log file for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("\n---- end of %s ----\n%s", path, b)
}
