package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cmd/grange/node"
)

// The layout verbs on a node started without a layout, through its admin
// API as `grange server -c FILE` would serve it (RPC off: one node).
func TestCLILayout(t *testing.T) {
	dir := t.TempDir()
	n, err := node.New(node.Config{MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"), AdminAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	d := []string{"--data-dir", dir}
	cli := func(args ...string) string { return mustRun(t, append(d, args...)...) }
	self := n.ID().String()

	if out := cli("status"); !strings.Contains(out, "layout version 0") || !strings.Contains(out, self[:16]) || !strings.Contains(out, "No layout yet") {
		t.Fatalf("status of a new node:\n%s", out)
	}
	if out := cli("node", "id", "-q"); !regexp.MustCompile(`^` + self + `(@\S+)?\n$`).MatchString(out) {
		t.Fatalf("node id: %q", out)
	}
	if out := cli("layout", "show"); !strings.Contains(out, "NO CLUSTER LAYOUT YET") {
		t.Fatalf("layout show without a layout:\n%s", out)
	}

	// refusals before the server is asked anything
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"layout", "assign", "-z", "dc1", "-c", "12X"}, "unknown unit"},
		{[]string{"layout", "assign", "-z", "dc1", "-c", "1T", "-g"}, "exclude each other"},
		{[]string{"layout", "assign", "-c", "1T"}, "-z"},
		{[]string{"layout", "assign", "-z", "dc1"}, "-c"},
		{[]string{"layout", "assign", "-z", "dc1", "-c", "1T", "ffff"}, "no known node"},
		{[]string{"layout", "config", "-r", "zero"}, "zone redundancy"},
		{[]string{"layout", "apply"}, "version"},
		{[]string{"layout", "remove", "zz"}, "not a node ID"},
	} {
		if out, err := run(t, append(d, tt.args...)...); err == nil || !strings.Contains(err.Error()+out, tt.want) {
			t.Errorf("grange %s: err=%v out=%q, want %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}

	// this node when no node is named; then by prefix, keeping the zone
	cli("layout", "assign", "-z", "dc1", "-c", "1T", "-t", "ssd")
	out := cli("layout", "assign", "-c", "2T", self[:6])
	if !strings.Contains(out, "zone dc1, capacity 2.0 TB, tags ssd") {
		t.Fatalf("assign keeping the zone:\n%s", out)
	}
	cli("layout", "config", "-r", "maximum")
	out = cli("layout", "show")
	for _, want := range []string{"STAGED CHANGES", "add", "2.0 TB", "NEW CLUSTER LAYOUT AFTER APPLYING THE CHANGES (version 1)", "256 (+256)", "grange layout apply --version 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("layout show with staged changes lacks %q:\n%s", want, out)
		}
	}
	if out, err := run(t, append(d, "layout", "apply", "--version", "2")...); err == nil || !strings.Contains(err.Error(), "the next one is 1") {
		t.Fatalf("apply of the wrong version: %v\n%s", err, out)
	}
	out = cli("layout", "apply", "--version", "1")
	if !strings.Contains(out, "Optimal partition size: 7.8 GB") || !strings.Contains(out, "Layout version 1 is applied") {
		t.Fatalf("layout apply:\n%s", out)
	}
	if v := n.Cluster().Layout().Version; v != 1 {
		t.Fatalf("layout version %d after apply", v)
	}
	out = cli("status")
	if !strings.Contains(out, "layout version 1") || !strings.Contains(out, "Health: healthy") || !strings.Contains(out, "dc1") {
		t.Fatalf("status after apply:\n%s", out)
	}
	if out := cli("layout", "history"); !strings.Contains(out, "current") {
		t.Fatalf("layout history:\n%s", out)
	}

	// stage a removal, then drop it
	cli("layout", "remove", self[:8])
	if out := cli("layout", "show"); !strings.Contains(out, "remove") || !strings.Contains(out, "CANNOT BE APPLIED") {
		t.Fatalf("layout show with the only node removed:\n%s", out)
	}
	out = cli("layout", "revert")
	if !strings.Contains(out, "Dropped") || !strings.Contains(out, "remove") {
		t.Fatalf("layout revert:\n%s", out)
	}
	if out := cli("layout", "revert"); !strings.Contains(out, "Nothing is staged") {
		t.Fatalf("second revert:\n%s", out)
	}
}

// `node id` falls back to the metadata directory when no node runs, and
// never creates a key.
func TestCLINodeIDOffline(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, "--data-dir", dir, "node", "id"); err == nil || !strings.Contains(err.Error(), "no node key") {
		t.Fatalf("node id without a key: %v", err)
	}
	if _, err := run(t, "--data-dir", dir, "node", "id"); err == nil {
		t.Fatal("node id created a key")
	}
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := cluster.LoadOrCreateNodeKey(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "--data-dir", dir, "node", "id")
	if !strings.Contains(out, k.ID().String()) || !strings.Contains(out, "rpc_public_addr") {
		t.Fatalf("node id offline, no address:\n%s", out)
	}
	conf := writeConfig(t, `metadata_dir = "`+filepath.Join(dir, "meta")+`"
data_dir = "`+filepath.Join(dir, "data")+`"
rpc_public_addr = "192.0.2.7:3901"
[admin]
api_bind_addr = "127.0.0.1:1"
admin_token = "t"
`)
	if out := mustRun(t, "-c", conf, "node", "id", "-q"); out != k.ID().String()+"@192.0.2.7:3901\n" {
		t.Fatalf("node id -q offline with a config: %q", out)
	}
}
