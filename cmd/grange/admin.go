package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
	"github.com/grangeio/grange/cmd/grange/node"
)

// adminClient finds the admin API of the node to manage: the flags or
// environment first, then the configuration file, then the token file of a
// local zero-config server.
func (g *globals) adminClient() (*adminapi.Client, error) {
	if g.client != nil {
		return g.client, nil
	}
	addr, token := g.adminAddr, g.adminToken
	if token == "" {
		token = os.Getenv("GRANGE_ADMIN_TOKEN")
	}
	var metaDir string
	if g.configFile != "" {
		c, err := loadConfig(g.configFile)
		if err != nil {
			return nil, err
		}
		if addr == "" {
			if c.Admin.APIBindAddr == "" {
				return nil, fmt.Errorf("%s has no [admin] api_bind_addr: the node has no admin API to talk to", g.configFile)
			}
			addr = reachable(c.Admin.APIBindAddr)
		}
		if token == "" {
			if token, err = c.adminToken(); err != nil {
				return nil, err
			}
		}
		metaDir = c.MetadataDir
	} else {
		metaDir = zeroConfig(g.dataDir).MetadataDir
	}
	if addr == "" || token == "" {
		ep, err := readAdminEndpoint(metaDir)
		if err != nil {
			return nil, err
		}
		addr = orDefault(addr, ep.Addr)
		token = orDefault(token, ep.Token)
	}
	g.client = &adminapi.Client{Addr: addr, Token: token}
	return g.client, nil
}

func readAdminEndpoint(metaDir string) (*node.AdminEndpoint, error) {
	path := filepath.Join(metaDir, node.AdminTokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no running server found: %s does not exist (start `grange server`, or pass -c FILE or --admin-addr and --admin-token)", path)
	}
	if err != nil {
		return nil, err
	}
	var ep node.AdminEndpoint
	if err := json.Unmarshal(b, &ep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &ep, nil
}

// call invokes an admin operation with a deadline.
func (g *globals) call(method, op string, query url.Values, body, out any) error {
	c, err := g.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Call(ctx, method, op, query, body, out)
}

// selfAnswer returns the answer of the one node asked with ?node=self,
// or its error.
func selfAnswer[T any](r *adminapi.MultiResponse[T]) (T, error) {
	var zero T
	for _, v := range r.Success {
		return v, nil
	}
	for id, msg := range r.Error {
		return zero, fmt.Errorf("node %s: %s", shortID(id), msg)
	}
	return zero, errors.New("the node gave no answer")
}

// selfNode is the query that addresses an operation Garage sends to
// nodes (?node=) to the node the CLI talks to.
func selfNode() url.Values { return url.Values{"node": {"self"}} }
