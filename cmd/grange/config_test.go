package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "grange.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const garageStyle = `
metadata_dir = "/var/lib/grange/meta"
data_dir = "/var/lib/grange/data"
metadata_fsync = false
replication_factor = 3
consistency_mode = "degraded"
rpc_bind_addr = "[::]:3901"
rpc_public_addr = "192.0.2.10:3901"
rpc_secret = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec"
bootstrap_peers = ["563e1ac825ee3323aa441e72c26d1030d6d4414aeb3dd25287c531e7fc2bc95d@192.0.2.11:3901"]

[s3_api]
s3_region = "garage"
api_bind_addr = "[::]:3900"
root_domain = ".s3.example.org"

[k2v_api]
api_bind_addr = "[::]:3904"

[s3_web]
bind_addr = "[::]:3902"
root_domain = ".web.example.org"
index = "index.html"

[admin]
api_bind_addr = "0.0.0.0:3903"
admin_token = "secret-admin-token"
metrics_token = "secret-metrics-token"
`

func TestLoadGarageStyleConfig(t *testing.T) {
	c, err := loadConfig(writeConfig(t, garageStyle))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetadataDir != "/var/lib/grange/meta" || c.DataDir[0].Path != "/var/lib/grange/data" || *c.MetadataFsync ||
		c.ReplicationFactor != 3 || c.ConsistencyMode != "degraded" || c.K2VAPI.APIBindAddr != "[::]:3904" ||
		c.Admin.AdminToken != "secret-admin-token" || len(c.BootstrapPeers) != 1 || c.S3Web.Index != "index.html" {
		t.Errorf("loaded %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	base := "metadata_dir = \"/m\"\ndata_dir = \"/d\"\n"
	tests := []struct {
		name, text, want string
	}{
		{"unknown top-level key", base + "metdata_fsync = true\n", "unknown key metdata_fsync"},
		{"unknown section key", base + "[k2v_api]\napi_bind_adr = \"[::]:3904\"\n", "unknown key k2v_api.api_bind_adr"},
		{"unknown section", base + "[s4_api]\nx = 1\n", "unknown key s4_api"},
		{"missing metadata_dir", "data_dir = \"/d\"\n", "metadata_dir is required"},
		{"missing data_dir", "metadata_dir = \"/m\"\n", "data_dir is required"},
		{"bad consistency mode", base + "consistency_mode = \"eventual\"\n", "consistency_mode"},
		{"short rpc secret", base + "rpc_secret = \"abcd\"\n", "rpc_secret must be 32 bytes"},
		{"bad bootstrap peer", base + "rpc_secret = \"" + strings.Repeat("ab", 32) + "\"\nbootstrap_peers = [\"nodeid@host\"]\n", "bootstrap peer"},
		{"bootstrap peer without secret", base + "bootstrap_peers = [\"" + strings.Repeat("ab", 32) + "@192.0.2.1:3901\"]\n", "needs rpc_secret"},
		{"bad bind address", base + "[k2v_api]\napi_bind_addr = \"3904\"\n", "k2v_api.api_bind_addr"},
		{"wrong type", base + "replication_factor = \"three\"\n", "replication_factor"},
		{"not toml", "metadata_dir = \n", "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDataDirList(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `metadata_dir = "/m"
data_dir = [
  { path = "/d1", capacity = "2T" },
  { path = "/d2", capacity = "500G", read_only = true },
]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DataDirs{{Path: "/d1", Capacity: "2T"}, {Path: "/d2", Capacity: "500G", ReadOnly: true}}
	if !reflect.DeepEqual(c.DataDir, want) {
		t.Errorf("data_dir = %+v", c.DataDir)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("GRANGE_METADATA_DIR", "/env/meta")
	t.Setenv("GRANGE_METADATA_FSYNC", "false")
	t.Setenv("GRANGE_REPLICATION_FACTOR", "2")
	t.Setenv("GRANGE_K2V_API_BIND_ADDR", "127.0.0.1:9999")
	t.Setenv("GRANGE_ADMIN_TOKEN", "from-env")
	t.Setenv("GRANGE_BOOTSTRAP_PEERS", "")
	c, err := loadConfig(writeConfig(t, garageStyle))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetadataDir != "/env/meta" || *c.MetadataFsync || c.ReplicationFactor != 2 ||
		c.K2VAPI.APIBindAddr != "127.0.0.1:9999" || c.Admin.AdminToken != "from-env" || len(c.BootstrapPeers) != 0 {
		t.Errorf("after env: %+v", c)
	}
	t.Setenv("GRANGE_REPLICATION_FACTOR", "two")
	if _, err := loadConfig(writeConfig(t, garageStyle)); err == nil || !strings.Contains(err.Error(), "GRANGE_REPLICATION_FACTOR") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o644)
	c, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\n[admin]\nadmin_token_file = \""+tokenFile+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.adminToken(); err == nil || !strings.Contains(err.Error(), "readable by other users") {
		t.Errorf("world-readable token file: %v", err)
	}
	os.Chmod(tokenFile, 0o600)
	if tok, err := c.adminToken(); err != nil || tok != "tok-from-file" {
		t.Errorf("adminToken = %q, %v", tok, err)
	}
}

func TestDataDirUnknownKey(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = [{ path = \"/d\", capcity = \"1T\" }]\n"))
	if err == nil || !strings.Contains(err.Error(), "capcity") {
		t.Errorf("unknown data_dir key: %v", err)
	}
}

func TestRPCSecretFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "rpc_secret")
	hexSecret := strings.Repeat("5a", 32)
	os.WriteFile(secretFile, []byte(hexSecret+"\n"), 0o644)
	c, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\nrpc_secret_file = \""+secretFile+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rpcSecret(); err == nil || !strings.Contains(err.Error(), "readable by other users") {
		t.Errorf("world-readable secret file: %v", err)
	}
	os.Chmod(secretFile, 0o600)
	s, err := c.rpcSecret()
	if err != nil || s[0] != 0x5a || s[31] != 0x5a {
		t.Errorf("rpcSecret = %x, %v", s, err)
	}
	os.WriteFile(secretFile, []byte("not hex"), 0o600)
	if _, err := c.rpcSecret(); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("bad secret file: %v", err)
	}
	// no secret: RPC disabled, not an error
	c, _ = loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\n"))
	if s, err := c.rpcSecret(); err != nil || s != ([32]byte{}) {
		t.Errorf("no secret = %x, %v", s, err)
	}
}

// GRANGE_CLOCK_OFFSET shifts the clock the server hands its node; an
// invalid value is an error naming the variable.
func TestClockOffsetFromEnv(t *testing.T) {
	g := &globals{dataDir: t.TempDir()}
	t.Setenv("GRANGE_CLOCK_OFFSET", "-2h")
	nc, c, err := nodeConfig(g, &serverFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.clockOffset != -2*time.Hour {
		t.Errorf("clock offset %v, want -2h", c.clockOffset)
	}
	if behind := time.Since(nc.Now()); behind < 2*time.Hour || behind > 2*time.Hour+time.Minute {
		t.Errorf("node clock %v behind, want 2h", behind)
	}
	t.Setenv("GRANGE_CLOCK_OFFSET", "2 hours")
	if _, _, err := nodeConfig(g, &serverFlags{}); err == nil || !strings.Contains(err.Error(), "GRANGE_CLOCK_OFFSET") {
		t.Errorf("invalid offset: %v, want an error naming GRANGE_CLOCK_OFFSET", err)
	}
}
