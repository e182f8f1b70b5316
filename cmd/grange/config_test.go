package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grangeio/grange/blocks"
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
  { path = "/d2", capacity = 500000000000 },
  { path = "/d3", read_only = true },
]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DataDirs{{Path: "/d1", Capacity: "2T"}, {Path: "/d2", Capacity: "500000000000"}, {Path: "/d3", ReadOnly: true}}
	if !reflect.DeepEqual(c.DataDir, want) {
		t.Errorf("data_dir = %+v", c.DataDir)
	}
	dirs, err := c.dataDirs()
	if err != nil {
		t.Fatal(err)
	}
	wantDirs := []blocks.Dir{{Path: "/d1", Capacity: 2e12}, {Path: "/d2", Capacity: 5e11}, {Path: "/d3", ReadOnly: true}}
	if !reflect.DeepEqual(dirs, wantDirs) {
		t.Errorf("dataDirs() = %+v, want %+v", dirs, wantDirs)
	}
}

// data_dir lists follow Garage's rules; each refusal names the directory
// and the fix.
func TestDataDirErrors(t *testing.T) {
	for _, tt := range []struct {
		name, dirs, want string
	}{
		{"several without capacity", `[{ path = "/d1", capacity = "1T" }, { path = "/d2" }]`, "data_dir /d2 has no capacity"},
		{"read-only with capacity", `[{ path = "/d1", capacity = "1T" }, { path = "/d2", capacity = "1T", read_only = true }]`, "data_dir /d2 is read_only: it takes no capacity"},
		{"all read-only", `[{ path = "/d1", read_only = true }]`, "at least one must take new blocks"},
		{"bad capacity unit", `[{ path = "/d1", capacity = "2X" }, { path = "/d2", capacity = "1T" }]`, "data_dir /d1: capacity \"2X\": unknown unit"},
		{"zero capacity", `[{ path = "/d1", capacity = "0" }]`, "want more than 0 bytes"},
		{"listed twice", `[{ path = "/d1", capacity = "1T" }, { path = "/d1/", capacity = "1T" }]`, "listed twice"},
		{"capacity of the wrong type", `[{ path = "/d1", capacity = true }]`, "capacity must be a size"},
		{"no path", `[{ capacity = "1T" }]`, "every entry needs a path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = "+tt.dirs+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// one directory in a list may go without a capacity: it takes every block
	c, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = [{ path = \"/d1\" }]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dirs, err := c.dataDirs(); err != nil || len(dirs) != 1 || dirs[0].Capacity != 0 {
		t.Errorf("one directory without capacity: %+v, %v", dirs, err)
	}
}

// The block store keys: Garage's names, sizes as integers or strings,
// compression_level as a level or "none"; defaults when absent.
func TestBlockStoreKeys(t *testing.T) {
	base := "metadata_dir = \"/m\"\ndata_dir = \"/d\"\n"
	for _, tt := range []struct {
		name, text                        string
		blockSize, level, ramBuffer, want string // want: a substring of the error
		fsync                             bool
	}{
		{name: "defaults", text: "", blockSize: "1048576", level: "1", ramBuffer: "268435456", fsync: true},
		{name: "integers", text: "block_size = 2097152\ncompression_level = 3\nblock_ram_buffer_max = 67108864\ndata_fsync = false\n",
			blockSize: "2097152", level: "3", ramBuffer: "67108864"},
		{name: "strings", text: "block_size = \"1M\"\ncompression_level = \"none\"\nblock_ram_buffer_max = \"1GiB\"\n",
			blockSize: "1000000", level: "none", ramBuffer: "1073741824", fsync: true},
		{name: "binary unit", text: "block_size = \"4MiB\"\ncompression_level = 19\n", blockSize: "4194304", level: "19", ramBuffer: "268435456", fsync: true},
		{name: "smallest block", text: "block_size = \"4KiB\"\n", blockSize: "4096", level: "1", ramBuffer: "268435456", fsync: true},
		{name: "block too small", text: "block_size = 4095\n", want: "block_size 4095: want 4 KiB to 8 MiB"},
		{name: "block too large", text: "block_size = \"9MiB\"\n", want: "block_size 9437184: want 4 KiB to 8 MiB"},
		{name: "block size unit", text: "block_size = \"1 parsec\"\n", want: "unknown unit"},
		{name: "block size type", text: "block_size = 1.5\n", want: "block_size"},
		{name: "negative block size", text: "block_size = -1\n", want: "negative"},
		{name: "level zero", text: "compression_level = 0\n", want: "compression level 0: want 1 (fastest) to 19"},
		{name: "level too high", text: "compression_level = 20\n", want: "compression level 20"},
		{name: "level word", text: "compression_level = \"fast\"\n", want: "compression level \"fast\""},
		{name: "ram buffer zero", text: "block_ram_buffer_max = 0\n", want: "block_ram_buffer_max 0: want a positive size"},
		{name: "fsync type", text: "data_fsync = \"yes\"\n", want: "data_fsync"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(writeConfig(t, base+tt.text))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("loadConfig: %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.withDefaults()
			got := fmt.Sprintf("%d %s %d %v", *c.BlockSize, c.CompressionLevel, *c.BlockRAMBufferMax, *c.DataFsync)
			if want := fmt.Sprintf("%s %s %s %v", tt.blockSize, tt.level, tt.ramBuffer, tt.fsync); got != want {
				t.Errorf("block_size, compression_level, block_ram_buffer_max, data_fsync = %s, want %s", got, want)
			}
		})
	}
}

func TestBlockStoreEnvironment(t *testing.T) {
	t.Setenv("GRANGE_DATA_FSYNC", "false")
	t.Setenv("GRANGE_BLOCK_SIZE", "2MiB")
	t.Setenv("GRANGE_COMPRESSION_LEVEL", "none")
	t.Setenv("GRANGE_BLOCK_RAM_BUFFER_MAX", "64M")
	c, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\nblock_size = 4096\ncompression_level = 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.DataFsync || *c.BlockSize != 2<<20 || *c.CompressionLevel != compressionNone || *c.BlockRAMBufferMax != 64e6 {
		t.Errorf("after env: fsync %v, block size %d, level %s, buffer %d", *c.DataFsync, *c.BlockSize, c.CompressionLevel, *c.BlockRAMBufferMax)
	}
	for name, val := range map[string]string{
		"GRANGE_BLOCK_SIZE":           "big",
		"GRANGE_COMPRESSION_LEVEL":    "25",
		"GRANGE_DATA_FSYNC":           "perhaps",
		"GRANGE_BLOCK_RAM_BUFFER_MAX": "-1",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			if _, err := loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\n")); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: %v, want an error naming the variable", name, val, err)
			}
		})
	}
	// the zero-config server checks the environment too
	t.Setenv("GRANGE_BLOCK_SIZE", "16MiB")
	if _, _, err := nodeConfig(&globals{dataDir: t.TempDir()}, &serverFlags{}); err == nil || !strings.Contains(err.Error(), "block_size") {
		t.Errorf("zero config with GRANGE_BLOCK_SIZE=16MiB: %v", err)
	}
}

// nodeConfig hands the node every data directory and the block settings.
func TestNodeConfigBlocks(t *testing.T) {
	conf := writeConfig(t, `metadata_dir = "/m"
data_dir = [
  { path = "/d1", capacity = "2T" },
  { path = "/d2", capacity = "1TiB" },
  { path = "/old", read_only = true },
]
data_fsync = false
block_size = "512KiB"
compression_level = "none"
block_ram_buffer_max = "32MiB"
`)
	nc, _, err := nodeConfig(&globals{configFile: conf}, &serverFlags{})
	if err != nil {
		t.Fatal(err)
	}
	wantDirs := []blocks.Dir{{Path: "/d1", Capacity: 2e12}, {Path: "/d2", Capacity: 1 << 40}, {Path: "/old", ReadOnly: true}}
	if !reflect.DeepEqual(nc.DataDirs, wantDirs) || !nc.NoDataFsync {
		t.Errorf("data dirs %+v, no fsync %v", nc.DataDirs, nc.NoDataFsync)
	}
	if b := nc.Blocks; b.BlockSize != 512<<10 || b.CompressionLevel >= 0 || b.RAMBufferMax != 32<<20 {
		t.Errorf("blocks config %+v", b)
	}

	// defaults: fsync on, 1 MiB blocks, zstd level 1, 256 MiB of buffers
	nc, _, err = nodeConfig(&globals{dataDir: t.TempDir()}, &serverFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if b := nc.Blocks; nc.NoDataFsync || len(nc.DataDirs) != 1 || b.BlockSize != 1<<20 || b.CompressionLevel != 1 || b.RAMBufferMax != 256<<20 {
		t.Errorf("defaults: no fsync %v, dirs %+v, blocks %+v", nc.NoDataFsync, nc.DataDirs, b)
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

// The server's banner lists every data directory and how blocks are
// stored.
func TestBannerDataDirs(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `metadata_dir = "/m"
data_dir = [
  { path = "/d1", capacity = "2T" },
  { path = "/d2", capacity = "500G" },
  { path = "/old", read_only = true },
]
compression_level = "none"
block_size = "4MiB"
`))
	if err != nil {
		t.Fatal(err)
	}
	c.withDefaults()
	var b strings.Builder
	printDataDirs(&b, c)
	want := `  data       /d1  (capacity 2.0 TB)
             /d2  (capacity 500.0 GB)
             /old  (read-only: being emptied, no new blocks)
  blocks     4 MiB each, no compression, fsync on
`
	if b.String() != want {
		t.Errorf("banner:\n%s\nwant:\n%s", b.String(), want)
	}
	c, _ = loadConfig(writeConfig(t, "metadata_dir = \"/m\"\ndata_dir = \"/d\"\ndata_fsync = false\n"))
	c.withDefaults()
	b.Reset()
	printDataDirs(&b, c)
	if want := "  data       /d\n  blocks     1 MiB each, zstd level 1, fsync off (data_fsync = false: a crash may lose recent blocks)\n"; b.String() != want {
		t.Errorf("banner:\n%s\nwant:\n%s", b.String(), want)
	}
}
