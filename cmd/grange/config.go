package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/grangeio/grange/blocks"
)

// Config is the TOML configuration file: the keys of Garage's garage.toml
// that apply to grange. Unknown keys are errors. Every key can also be set
// by the environment variable in its env tag, which wins over the file.
// A nil pointer is a key not given: withDefaults fills it.
type Config struct {
	MetadataDir       string            `toml:"metadata_dir" env:"GRANGE_METADATA_DIR"`
	DataDir           DataDirs          `toml:"data_dir" env:"GRANGE_DATA_DIR"`
	MetadataFsync     *bool             `toml:"metadata_fsync" env:"GRANGE_METADATA_FSYNC"`
	DataFsync         *bool             `toml:"data_fsync" env:"GRANGE_DATA_FSYNC"`
	DataDirectIO      bool              `toml:"data_direct_io" env:"GRANGE_DATA_DIRECT_IO"`
	BlockSize         *ByteSize         `toml:"block_size" env:"GRANGE_BLOCK_SIZE"`
	CompressionLevel  *CompressionLevel `toml:"compression_level" env:"GRANGE_COMPRESSION_LEVEL"`
	BlockRAMBufferMax *ByteSize         `toml:"block_ram_buffer_max" env:"GRANGE_BLOCK_RAM_BUFFER_MAX"`
	ReplicationFactor int               `toml:"replication_factor" env:"GRANGE_REPLICATION_FACTOR"`
	ConsistencyMode   string            `toml:"consistency_mode" env:"GRANGE_CONSISTENCY_MODE"`
	RPCBindAddr       string            `toml:"rpc_bind_addr" env:"GRANGE_RPC_BIND_ADDR"`
	RPCPublicAddr     string            `toml:"rpc_public_addr" env:"GRANGE_RPC_PUBLIC_ADDR"`
	RPCSecret         string            `toml:"rpc_secret" env:"GRANGE_RPC_SECRET"`
	RPCSecretFile     string            `toml:"rpc_secret_file" env:"GRANGE_RPC_SECRET_FILE"`
	BootstrapPeers    []string          `toml:"bootstrap_peers" env:"GRANGE_BOOTSTRAP_PEERS"`
	S3API             S3API             `toml:"s3_api"`
	K2VAPI            K2VAPI            `toml:"k2v_api"`
	S3Web             S3Web             `toml:"s3_web"`
	Admin             AdminConf         `toml:"admin"`

	// clockOffset is GRANGE_CLOCK_OFFSET, a testing knob read apart from
	// the file (see cluster/clock): set by nodeConfig.
	clockOffset time.Duration
}

// S3API is the [s3_api] section.
type S3API struct {
	APIBindAddr string `toml:"api_bind_addr" env:"GRANGE_S3_API_BIND_ADDR"`
	S3Region    string `toml:"s3_region" env:"GRANGE_S3_REGION"`
	RootDomain  string `toml:"root_domain" env:"GRANGE_S3_ROOT_DOMAIN"`
}

// K2VAPI is the [k2v_api] section.
type K2VAPI struct {
	APIBindAddr string `toml:"api_bind_addr" env:"GRANGE_K2V_API_BIND_ADDR"`
}

// S3Web is the [s3_web] section.
type S3Web struct {
	BindAddr   string `toml:"bind_addr" env:"GRANGE_S3_WEB_BIND_ADDR"`
	RootDomain string `toml:"root_domain" env:"GRANGE_S3_WEB_ROOT_DOMAIN"`
	Index      string `toml:"index" env:"GRANGE_S3_WEB_INDEX"`
}

// AdminConf is the [admin] section.
type AdminConf struct {
	APIBindAddr      string `toml:"api_bind_addr" env:"GRANGE_ADMIN_API_BIND_ADDR"`
	AdminToken       string `toml:"admin_token" env:"GRANGE_ADMIN_TOKEN"`
	AdminTokenFile   string `toml:"admin_token_file" env:"GRANGE_ADMIN_TOKEN_FILE"`
	MetricsToken     string `toml:"metrics_token" env:"GRANGE_METRICS_TOKEN"`
	MetricsTokenFile string `toml:"metrics_token_file" env:"GRANGE_METRICS_TOKEN_FILE"`
}

// DataDirs is data_dir: a path, or (as in Garage) a list of tables with a
// path and a capacity.
type DataDirs []DataDir

// DataDir is one data directory.
type DataDir struct {
	Path     string `toml:"path"`
	Capacity string `toml:"capacity"`
	ReadOnly bool   `toml:"read_only"`
}

// UnmarshalTOML accepts a string or an array of tables.
func (d *DataDirs) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*d = DataDirs{{Path: v}}
		return nil
	case []any:
		for _, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Errorf("data_dir: expected tables {path, capacity}, got %T", e)
			}
			var dd DataDir
			for k, val := range m {
				switch k {
				case "path":
					s, ok := val.(string)
					if !ok {
						return fmt.Errorf("data_dir: path must be a string, got %T", val)
					}
					dd.Path = s
				case "capacity":
					switch c := val.(type) {
					case string:
						dd.Capacity = c
					case int64: // bytes
						if c < 0 {
							return fmt.Errorf("data_dir: capacity %d is negative", c)
						}
						dd.Capacity = strconv.FormatInt(c, 10)
					default:
						return fmt.Errorf("data_dir: capacity must be a size like \"2T\" or \"500GiB\", got %T", val)
					}
				case "read_only":
					b, ok := val.(bool)
					if !ok {
						return errors.New("data_dir: read_only must be a boolean")
					}
					dd.ReadOnly = b
				default:
					return fmt.Errorf("data_dir: unknown key %q", k)
				}
			}
			if dd.Path == "" {
				return errors.New("data_dir: every entry needs a path")
			}
			*d = append(*d, dd)
		}
		return nil
	}
	return fmt.Errorf("data_dir: expected a path or a list of {path, capacity}, got %T", v)
}

// dataDirs returns data_dir as the block store's directories with their
// capacities parsed, checked as Garage checks them: with several
// directories, every writable one needs a capacity (its share of the
// blocks is proportional to it); a read_only directory, being retired,
// takes none; at least one directory is writable.
func (c *Config) dataDirs() ([]blocks.Dir, error) {
	out := make([]blocks.Dir, 0, len(c.DataDir))
	seen := make(map[string]bool)
	writable := 0
	for _, d := range c.DataDir {
		if d.Path == "" {
			return nil, errors.New("config: data_dir: empty path")
		}
		clean := filepath.Clean(d.Path)
		if seen[clean] {
			return nil, fmt.Errorf("config: data_dir %s is listed twice", d.Path)
		}
		seen[clean] = true
		dir := blocks.Dir{Path: d.Path, ReadOnly: d.ReadOnly}
		switch {
		case d.ReadOnly && d.Capacity != "":
			return nil, fmt.Errorf("config: data_dir %s is read_only: it takes no capacity (no block is written there any more; remove capacity or read_only)", d.Path)
		case d.ReadOnly:
		case d.Capacity != "":
			n, err := parseCapacity(d.Capacity)
			if err != nil {
				return nil, fmt.Errorf("config: data_dir %s: %w", d.Path, err)
			}
			if n == 0 || n > math.MaxInt64 {
				return nil, fmt.Errorf("config: data_dir %s: capacity %q: want more than 0 bytes and less than 8 EiB", d.Path, d.Capacity)
			}
			dir.Capacity = int64(n)
			writable++
		case len(c.DataDir) > 1:
			return nil, fmt.Errorf("config: data_dir %s has no capacity: with several data directories, each writable one needs one (capacity = \"2T\"; its share of the blocks is proportional to it), or read_only = true", d.Path)
		default:
			writable++
		}
		out = append(out, dir)
	}
	if writable == 0 {
		return nil, errors.New("config: data_dir: every directory is read_only: at least one must take new blocks")
	}
	return out, nil
}

// Block store settings (Garage's keys; the defaults are Garage's).
const (
	minBlockSize             = 4 << 10
	defaultCompressionLevel  = 1
	maxCompressionLevel      = 19
	defaultBlockRAMBufferMax = 256 << 20
)

// ByteSize is a byte count in the configuration: a TOML integer (bytes)
// or a string with a unit ("1M", "1MiB", "256 MiB"; parseCapacity).
type ByteSize uint64

// UnmarshalTOML accepts an integer or a size string.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("size %d is negative", v)
		}
		*b = ByteSize(v)
		return nil
	case string:
		n, err := parseCapacity(v)
		if err != nil {
			return err
		}
		*b = ByteSize(n)
		return nil
	}
	return fmt.Errorf("expected a size in bytes or a string like \"1MiB\", got %T", v)
}

// CompressionLevel is compression_level: a zstd level, or "none"
// (compressionNone) to store blocks uncompressed.
type CompressionLevel int

// compressionNone is "none": blocks.Config takes a negative level for it.
const compressionNone CompressionLevel = -1

// UnmarshalTOML accepts an integer or "none".
func (l *CompressionLevel) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 1 || v > maxCompressionLevel {
			return fmt.Errorf("compression level %d: want 1 (fastest) to %d (smallest), or \"none\"", v, maxCompressionLevel)
		}
		*l = CompressionLevel(v)
		return nil
	case string:
		n, err := parseCompressionLevel(v)
		if err != nil {
			return err
		}
		*l = n
		return nil
	}
	return fmt.Errorf("compression level: expected an integer or \"none\", got %T", v)
}

// parseCompressionLevel reads "none" or a level from 1 to 19 (the
// environment variable, or a string in the file).
func parseCompressionLevel(s string) (CompressionLevel, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "none") {
		return compressionNone, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxCompressionLevel {
		return 0, fmt.Errorf("compression level %q: want 1 (fastest) to %d (smallest), or \"none\"", s, maxCompressionLevel)
	}
	return CompressionLevel(n), nil
}

// String is the level or "none".
func (l CompressionLevel) String() string {
	if l < 0 {
		return "none"
	}
	return strconv.Itoa(int(l))
}

// validateBlocks checks the block store settings that are set.
func (c *Config) validateBlocks() error {
	if b := c.BlockSize; b != nil && (*b < minBlockSize || *b > blocks.MaxBlockSize) {
		return fmt.Errorf("config: block_size %d: want 4 KiB to %d MiB (%d to %d bytes)", *b, blocks.MaxBlockSize>>20, minBlockSize, blocks.MaxBlockSize)
	}
	if b := c.BlockRAMBufferMax; b != nil && (*b == 0 || *b > math.MaxInt64) {
		return fmt.Errorf("config: block_ram_buffer_max %d: want a positive size, like \"256MiB\"", *b)
	}
	return nil
}

// loadConfig reads a configuration file and applies the environment.
func loadConfig(path string) (*Config, error) {
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		// data_dir decodes itself and checks its own keys
		if len(k) > 0 && k[0] != "data_dir" {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("config %s: unknown key %s", path, strings.Join(unknown, ", "))
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), os.LookupEnv); err != nil {
		return nil, err
	}
	return &c, c.validate()
}

// applyEnv sets the fields whose env variable is set.
func applyEnv(v reflect.Value, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, lookup); err != nil {
				return err
			}
			continue
		}
		name := f.Tag.Get("env")
		val, ok := lookup(name)
		if name == "" || !ok {
			continue
		}
		switch p := fv.Addr().Interface().(type) {
		case *string:
			*p = val
		case *int:
			n, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", name, val)
			}
			*p = n
		case **bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("%s: %q is not a boolean", name, val)
			}
			*p = &b
		case *[]string:
			*p = strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' })
		case *DataDirs:
			*p = DataDirs{{Path: val}}
		case **ByteSize:
			n, err := parseCapacity(val)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			b := ByteSize(n)
			*p = &b
		case **CompressionLevel:
			l, err := parseCompressionLevel(val)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*p = &l
		default:
			return fmt.Errorf("%s: unsupported field type %s", name, f.Type)
		}
	}
	return nil
}

func (c *Config) validate() error {
	if c.MetadataDir == "" {
		return errors.New("config: metadata_dir is required")
	}
	if len(c.DataDir) == 0 {
		return errors.New("config: data_dir is required")
	}
	if _, err := c.dataDirs(); err != nil {
		return err
	}
	if err := c.validateBlocks(); err != nil {
		return err
	}
	if c.ReplicationFactor < 0 {
		return fmt.Errorf("config: replication_factor = %d", c.ReplicationFactor)
	}
	switch c.ConsistencyMode {
	case "", "consistent", "degraded", "dangerous":
	default:
		return fmt.Errorf("config: consistency_mode %q: want consistent, degraded or dangerous", c.ConsistencyMode)
	}
	if c.RPCSecret != "" && c.RPCSecretFile != "" {
		return errors.New("config: set rpc_secret or rpc_secret_file, not both")
	}
	if c.RPCSecret != "" {
		if b, err := hex.DecodeString(c.RPCSecret); err != nil || len(b) != 32 {
			return errors.New("config: rpc_secret must be 32 bytes in hex (64 hex digits; `openssl rand -hex 32` makes one)")
		}
	}
	if len(c.BootstrapPeers) > 0 && c.RPCSecret == "" && c.RPCSecretFile == "" {
		return errors.New("config: bootstrap_peers needs rpc_secret or rpc_secret_file: nodes only talk to nodes that share the cluster secret")
	}
	for _, p := range c.BootstrapPeers {
		id, addr, ok := strings.Cut(p, "@")
		if !ok || len(id) != 64 {
			return fmt.Errorf("config: bootstrap peer %q: want <64 hex digit node id>@<host:port>", p)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("config: bootstrap peer %q: %v", p, err)
		}
	}
	for name, addr := range map[string]string{
		"rpc_bind_addr": c.RPCBindAddr, "s3_api.api_bind_addr": c.S3API.APIBindAddr,
		"k2v_api.api_bind_addr": c.K2VAPI.APIBindAddr, "s3_web.bind_addr": c.S3Web.BindAddr,
		"admin.api_bind_addr": c.Admin.APIBindAddr,
	} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("config: %s %q: %v", name, addr, err)
		}
	}
	if c.Admin.AdminToken != "" && c.Admin.AdminTokenFile != "" {
		return errors.New("config: set admin.admin_token or admin.admin_token_file, not both")
	}
	return nil
}

// adminToken returns the configured admin token, reading the token file.
func (c *Config) adminToken() (string, error) {
	if c.Admin.AdminTokenFile == "" {
		return c.Admin.AdminToken, nil
	}
	return readSecretFile(c.Admin.AdminTokenFile)
}

// rpcSecret returns the cluster secret from rpc_secret or rpc_secret_file;
// the zero value when neither is set (RPC disabled).
func (c *Config) rpcSecret() ([32]byte, error) {
	var secret [32]byte
	s := c.RPCSecret
	if c.RPCSecretFile != "" {
		var err error
		if s, err = readSecretFile(c.RPCSecretFile); err != nil {
			return secret, fmt.Errorf("rpc_secret_file: %w", err)
		}
	}
	if s == "" {
		return secret, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return secret, errors.New("rpc secret must be 32 bytes in hex (64 hex digits; `openssl rand -hex 32` makes one)")
	}
	copy(secret[:], b)
	if secret == ([32]byte{}) {
		return secret, errors.New("rpc secret is all zeros")
	}
	return secret, nil
}

// readSecretFile reads a secret from a file that only its owner may read.
func readSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by other users (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// zeroConfig is the configuration of `grange server` without a file.
func zeroConfig(dataDir string) *Config {
	return &Config{
		MetadataDir: filepath.Join(dataDir, "meta"),
		DataDir:     DataDirs{{Path: filepath.Join(dataDir, "data")}},
	}
}

// withDefaults fills the default ports and settings.
func (c *Config) withDefaults() {
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.ConsistencyMode == "" {
		c.ConsistencyMode = "consistent"
	}
	if c.S3API.S3Region == "" {
		c.S3API.S3Region = "garage"
	}
	if c.MetadataFsync == nil {
		t := true
		c.MetadataFsync = &t
	}
	if c.DataFsync == nil {
		// Garage's default is false; grange acknowledges a block once it
		// is on disk, as it does metadata.
		t := true
		c.DataFsync = &t
	}
	if c.BlockSize == nil {
		b := ByteSize(blocks.DefaultBlockSize)
		c.BlockSize = &b
	}
	if c.CompressionLevel == nil {
		l := CompressionLevel(defaultCompressionLevel)
		c.CompressionLevel = &l
	}
	if c.BlockRAMBufferMax == nil {
		b := ByteSize(defaultBlockRAMBufferMax)
		c.BlockRAMBufferMax = &b
	}
}
