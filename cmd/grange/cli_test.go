package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grangeio/grange/cmd/grange/node"
)

// startLocal starts an in-process node laid out as `grange server
// --data-dir dir` lays it out, so that the CLI finds it through the token
// file.
func startLocal(t *testing.T) (dir string, n *node.Node) {
	t.Helper()
	dir = t.TempDir()
	n, err := node.New(node.Config{MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"), SingleNode: true, K2VAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return dir, n
}

// run executes the CLI in-process and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("grange %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestCLIKeysAndBuckets(t *testing.T) {
	dir, n := startLocal(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) string { return mustRun(t, append(d, args...)...) }

	out := cli("key", "create", "alice")
	if !regexp.MustCompile(`Key ID:\s+GK[0-9a-f]{24}`).MatchString(out) || !regexp.MustCompile(`Secret key:\s+[0-9a-f]{64}`).MatchString(out) {
		t.Fatalf("key create:\n%s", out)
	}
	// Garage's flag shape: flags may follow positional arguments
	cli("key", "import", "AKIAEXAMPLEBOB", "bobsecretkey1", "--name", "bob")
	out = cli("key", "list")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "AKIAEXAMPLEBOB") || !strings.Contains(out, "bob") {
		t.Fatalf("key list:\n%s", out)
	}
	if out := cli("key", "info", "bob"); !strings.Contains(out, "AKIAEXAMPLEBOB") || strings.Contains(out, "bobsecretkey1") {
		t.Fatalf("key info without --show-secret:\n%s", out)
	}
	if out := cli("key", "info", "--show-secret", "bob"); !strings.Contains(out, "bobsecretkey1") {
		t.Fatalf("key info --show-secret:\n%s", out)
	}

	cli("bucket", "create", "photos")
	out = cli("bucket", "allow", "--read", "--write", "photos", "--key", "bob")
	if !strings.Contains(out, "RW-") {
		t.Fatalf("bucket allow:\n%s", out)
	}
	cli("bucket", "allow", "--owner", "photos", "--key", "AKIAEXAMPLEBOB")
	cli("bucket", "deny", "--write", "photos", "--key", "bob")
	out = cli("bucket", "info", "photos")
	if !strings.Contains(out, "R-O") || !strings.Contains(out, "AKIAEXAMPLEBOB") {
		t.Fatalf("bucket info:\n%s", out)
	}
	cli("bucket", "alias", "photos", "pictures")
	if out := cli("bucket", "list"); !strings.Contains(out, "photos, pictures") {
		t.Fatalf("bucket list:\n%s", out)
	}
	cli("bucket", "unalias", "photos", "pictures")

	// refusals with clear messages
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bucket", "delete", "photos"}, "--yes"},
		{[]string{"key", "delete", "bob"}, "--yes"},
		{[]string{"bucket", "allow", "photos", "--key", "bob"}, "--read"},
		{[]string{"bucket", "allow", "--read", "photos"}, "key"},
		{[]string{"bucket", "create", "Bad_Name"}, "invalid bucket name"},
		{[]string{"bucket", "create", "photos"}, "already in use"},
		{[]string{"bucket", "info", "nothere"}, "NoSuchBucket"},
		{[]string{"key", "info", "nobody"}, "NoSuchAccessKey"},
		{[]string{"key", "import", "AKIAEXAMPLEBOB", "othersecret1"}, "KeyAlreadyExists"},
	} {
		if out, err := run(t, append(d, tt.args...)...); err == nil || !strings.Contains(err.Error()+out, tt.want) {
			t.Errorf("grange %s: err=%v out=%q, want %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}

	cli("bucket", "delete", "--yes", "photos")
	cli("key", "delete", "--yes", "bob")
	if out := cli("key", "list"); strings.Contains(out, "bob") {
		t.Fatalf("key list after delete:\n%s", out)
	}

	// a remote node through --admin-addr and --admin-token
	out = mustRun(t, "--data-dir", t.TempDir(), "--admin-addr", n.AdminAddr(), "--admin-token", n.AdminToken(), "key", "list")
	if !strings.Contains(out, "alice") {
		t.Fatalf("remote key list:\n%s", out)
	}
	if _, err := run(t, "--data-dir", t.TempDir(), "--admin-addr", n.AdminAddr(), "--admin-token", "wrong", "key", "list"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("wrong token: %v", err)
	}
	// no server at all
	if _, err := run(t, "--data-dir", t.TempDir(), "key", "list"); err == nil || !strings.Contains(err.Error(), "no running server") {
		t.Errorf("no server: %v", err)
	}
}

func TestCLIConfigFile(t *testing.T) {
	dir := t.TempDir()
	conf := writeConfig(t, `metadata_dir = "`+filepath.Join(dir, "meta")+`"
data_dir = "`+filepath.Join(dir, "data")+`"
[k2v_api]
api_bind_addr = "127.0.0.1:0"
[admin]
api_bind_addr = "127.0.0.1:0"
admin_token = "configured-token"
`)
	// the server reads the same file; start it in-process with it
	nc, _, err := nodeConfig(&globals{configFile: conf}, &serverFlags{singleNode: true})
	if err != nil {
		t.Fatal(err)
	}
	if nc.AdminToken != "configured-token" || nc.K2VAddr != "127.0.0.1:0" || !nc.SingleNode {
		t.Fatalf("node config %+v", nc)
	}
	n, err := node.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	// the CLI cannot know the kernel-chosen port from the file: it is given
	out := mustRun(t, "-c", conf, "--admin-addr", n.AdminAddr(), "bucket", "create", "from-config")
	if !strings.Contains(out, "from-config created") {
		t.Fatalf("bucket create with -c:\n%s", out)
	}
	if _, err := run(t, "-c", filepath.Join(dir, "missing.toml"), "key", "list"); err == nil {
		t.Error("missing config file accepted")
	}
}
