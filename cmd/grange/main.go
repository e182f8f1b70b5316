// Command grange is the grange server and its operator CLI.
//
//	grange server              # a single-node server in ./grange-data
//	grange server -c FILE      # a node configured by a TOML file
//	grange status              # operator verbs talk to a node's admin API
//	grange layout show
//	grange key create NAME
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globals are the flags shared by every command.
type globals struct {
	configFile string
	dataDir    string
	adminAddr  string
	adminToken string
	logLevel   string

	// client is the admin API client, found once per command.
	client *adminapi.Client
}

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "grange",
		Short:         "grange: K2V and S3 storage for self-hosters, over several sites",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		// Flags before a subcommand belong to the command they follow, as
		// in Garage's CLI: in `grange -c FILE layout assign -c 1T`, the
		// first -c is the configuration file, the second a capacity.
		TraverseChildren: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configFile, "config", "c", "", "configuration file (TOML)")
	pf.StringVar(&g.dataDir, "data-dir", "grange-data", "data directory of a server started without a configuration file")
	pf.StringVar(&g.adminAddr, "admin-addr", os.Getenv("GRANGE_ADMIN_ADDR"), "admin API address of the node to manage (env GRANGE_ADMIN_ADDR)")
	pf.StringVar(&g.adminToken, "admin-token", "", "admin API token (env GRANGE_ADMIN_TOKEN)")
	pf.StringVar(&g.logLevel, "log-level", envOr("GRANGE_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env GRANGE_LOG_LEVEL)")
	root.AddCommand(newServerCommand(g), newStatusCommand(g), newNodeCommand(g), newLayoutCommand(g), newKeyCommand(g), newBucketCommand(g), newRepairCommand(g), newBlockCommand(g), newWorkerCommand(g), newBenchCommand(g))
	return root
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// logger writes text logs to stderr at the requested level.
func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(g.logLevel))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
