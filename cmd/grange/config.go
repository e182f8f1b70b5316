package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the TOML configuration file: the keys of Garage's garage.toml
// that apply to grange. Unknown keys are errors. Every key can also be set
// by the environment variable in its env tag, which wins over the file.
type Config struct {
	MetadataDir       string    `toml:"metadata_dir" env:"GRANGE_METADATA_DIR"`
	DataDir           DataDirs  `toml:"data_dir" env:"GRANGE_DATA_DIR"`
	MetadataFsync     *bool     `toml:"metadata_fsync" env:"GRANGE_METADATA_FSYNC"`
	ReplicationFactor int       `toml:"replication_factor" env:"GRANGE_REPLICATION_FACTOR"`
	ConsistencyMode   string    `toml:"consistency_mode" env:"GRANGE_CONSISTENCY_MODE"`
	RPCBindAddr       string    `toml:"rpc_bind_addr" env:"GRANGE_RPC_BIND_ADDR"`
	RPCPublicAddr     string    `toml:"rpc_public_addr" env:"GRANGE_RPC_PUBLIC_ADDR"`
	RPCSecret         string    `toml:"rpc_secret" env:"GRANGE_RPC_SECRET"`
	RPCSecretFile     string    `toml:"rpc_secret_file" env:"GRANGE_RPC_SECRET_FILE"`
	BootstrapPeers    []string  `toml:"bootstrap_peers" env:"GRANGE_BOOTSTRAP_PEERS"`
	S3API             S3API     `toml:"s3_api"`
	K2VAPI            K2VAPI    `toml:"k2v_api"`
	S3Web             S3Web     `toml:"s3_web"`
	Admin             AdminConf `toml:"admin"`

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
				s, _ := val.(string)
				switch k {
				case "path":
					dd.Path = s
				case "capacity":
					dd.Capacity = s
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
}
