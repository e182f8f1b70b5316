package adminapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// maxBodyBytes caps admin request bodies: they are small JSON objects.
const maxBodyBytes = 1 << 20

// Config configures NewServer.
type Config struct {
	// Token is the bearer token every /v2/ operation requires. It must not
	// be empty.
	Token   string
	Region  string
	Catalog *k2v.Catalog
	// Cluster is the node's view of the cluster: peers, layout history.
	Cluster *cluster.Cluster
	// Repair runs anti-entropy on demand; nil disables the table repair
	// and the table sync worker.
	Repair Repairer
	// Blocks is the node's block store; nil disables the block
	// operations (ListBlockErrors, the blocks and scrub repairs).
	Blocks Blocks
	// Version is reported as the node's software version; "" means the
	// main module version of the build information.
	Version string
	// Now is the node's clock; nil means time.Now. It stamps staged layout
	// changes (compared with other nodes' stamps) and measures how long ago
	// peers were seen (against times from the cluster's clock, the same).
	Now    func() time.Time
	Logger *slog.Logger
}

// Server serves the admin API.
type Server struct {
	cfg  Config
	log  *slog.Logger
	http *fasthttp.Server
}

// NewServer returns an admin API server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("adminapi: empty admin token")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.http = &fasthttp.Server{
		Handler:            s.handle,
		Name:               "grange",
		MaxRequestBodySize: maxBodyBytes,
		ReadTimeout:        time.Minute,
		WriteTimeout:       time.Minute,
		IdleTimeout:        2 * time.Minute,
		CloseOnShutdown:    true,
	}
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops the server, waiting for requests in progress.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.ShutdownWithContext(ctx) }

// apiError is an admin API error with its code and status.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{400, "InvalidRequest", fmt.Sprintf(format, args...)}
}

// errorTable maps catalog errors to admin API codes.
var errorTable = []struct {
	target error
	code   string
	status int
}{
	{k2v.ErrNoSuchKey, "NoSuchAccessKey", 404},
	{k2v.ErrKeyExists, "KeyAlreadyExists", 409},
	{k2v.ErrNoSuchBucket, "NoSuchBucket", 404},
	{k2v.ErrBucketExists, "BucketAlreadyExists", 409},
	{k2v.ErrBucketNotEmpty, "BucketNotEmpty", 409},
	{k2v.ErrInvalidArgument, "InvalidRequest", 400},
	{k2v.ErrAmbiguous, "InvalidRequest", 400},
	// Layout changes the layout computation refuses: a wrong version
	// number, nothing staged, too few nodes or zones for the replication
	// factor and zone redundancy.
	{layout.ErrVersionMismatch, "InvalidRequest", 400},
	{layout.ErrNoChanges, "InvalidRequest", 400},
	{layout.ErrInvalid, "InvalidRequest", 400},
}

type op struct {
	method string
	fn     func(s *Server, rc *fasthttp.RequestCtx) (any, error)
}

var operations = map[string]op{
	"GetClusterHealth":            {"GET", (*Server).getClusterHealth},
	"GetClusterStatus":            {"GET", (*Server).getClusterStatus},
	"ConnectClusterNodes":         {"POST", (*Server).connectClusterNodes},
	"GetNodeInfo":                 {"GET", (*Server).getNodeInfo},
	"LaunchRepairOperation":       {"POST", (*Server).launchRepairOperation},
	"GetTableSyncStatus":          {"GET", (*Server).getTableSyncStatus},
	"GetNodeStatistics":           {"GET", (*Server).getNodeStatistics},
	"ListWorkers":                 {"POST", (*Server).listWorkers},
	"ListBlockErrors":             {"GET", (*Server).listBlockErrors},
	"GetClusterLayout":            {"GET", (*Server).getClusterLayout},
	"UpdateClusterLayout":         {"POST", (*Server).updateClusterLayout},
	"PreviewClusterLayoutChanges": {"POST", (*Server).previewClusterLayoutChanges},
	"ApplyClusterLayout":          {"POST", (*Server).applyClusterLayout},
	"RevertClusterLayout":         {"POST", (*Server).revertClusterLayout},
	"ClusterLayoutSkipDeadNodes":  {"POST", (*Server).skipDeadNodes},
	"GetClusterLayoutHistory":     {"GET", (*Server).getClusterLayoutHistory},
	"ListKeys":                    {"GET", (*Server).listKeys},
	"GetKeyInfo":                  {"GET", (*Server).getKeyInfo},
	"CreateKey":                   {"POST", (*Server).createKey},
	"ImportKey":                   {"POST", (*Server).importKey},
	"UpdateKey":                   {"POST", (*Server).updateKey},
	"DeleteKey":                   {"POST", (*Server).deleteKey},
	"ListBuckets":                 {"GET", (*Server).listBuckets},
	"GetBucketInfo":               {"GET", (*Server).getBucketInfo},
	"CreateBucket":                {"POST", (*Server).createBucket},
	"DeleteBucket":                {"POST", (*Server).deleteBucket},
	"AllowBucketKey":              {"POST", (*Server).allowBucketKey},
	"DenyBucketKey":               {"POST", (*Server).denyBucketKey},
	"AddBucketAlias":              {"POST", (*Server).addBucketAlias},
	"RemoveBucketAlias":           {"POST", (*Server).removeBucketAlias},
}

func (s *Server) handle(rc *fasthttp.RequestCtx) {
	path := string(rc.Path())
	if path == "/health" || path == "/v2/Health" {
		s.health(rc)
		return
	}
	res, err := s.dispatch(rc, path)
	if err != nil {
		s.writeError(rc, path, err)
		return
	}
	rc.SetContentType("application/json")
	if res == nil {
		rc.SetStatusCode(200)
		return
	}
	b, err := marshal(res)
	if err != nil {
		s.writeError(rc, path, err)
		return
	}
	rc.SetStatusCode(200)
	rc.SetBody(b)
}

func (s *Server) dispatch(rc *fasthttp.RequestCtx, path string) (any, error) {
	name, ok := strings.CutPrefix(path, "/v2/")
	o, known := operations[name]
	if !ok || !known {
		return nil, &apiError{404, "NoSuchEndpoint", fmt.Sprintf("unknown API endpoint: %s %s", rc.Method(), path)}
	}
	if !s.authorized(rc) {
		return nil, &apiError{403, "AccessDenied", "Forbidden: invalid or missing admin token"}
	}
	if string(rc.Method()) != o.method {
		return nil, &apiError{405, "MethodNotAllowed", fmt.Sprintf("%s takes %s", name, o.method)}
	}
	return o.fn(s, rc)
}

func (s *Server) authorized(rc *fasthttp.RequestCtx) bool {
	token, ok := strings.CutPrefix(string(rc.Request.Header.Peek("Authorization")), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.Token)) == 1
}

func (s *Server) writeError(rc *fasthttp.RequestCtx, path string, err error) {
	status, code, msg := 500, "InternalError", "internal error"
	var ae *apiError
	if errors.As(err, &ae) {
		status, code, msg = ae.status, ae.code, ae.msg
	} else {
		matched := false
		for _, e := range errorTable {
			if errors.Is(err, e.target) {
				status, code, msg, matched = e.status, e.code, err.Error(), true
				break
			}
		}
		if !matched {
			s.log.Error("admin request failed", "path", path, "err", err)
		}
	}
	b, _ := marshal(ErrorBody{Code: code, Message: msg, Region: s.cfg.Region, Path: path})
	rc.Response.Reset()
	rc.SetStatusCode(status)
	rc.SetContentType("application/json")
	rc.SetBody(b)
}

// marshal writes v as indented JSON and a newline, leaving <, > and &
// as they are: messages quote "<node id>@<host:port>" forms.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decode parses a JSON request body into v, refusing unknown fields so that
// a misspelt option is an error rather than silently ignored.
func decode(rc *fasthttp.RequestCtx, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(rc.PostBody())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

func (s *Server) health(rc *fasthttp.RequestCtx) {
	h := s.clusterHealth()
	rc.SetContentType("text/plain; charset=utf-8")
	switch h.Status {
	case "unavailable":
		rc.SetStatusCode(503)
		rc.SetBodyString(fmt.Sprintf("grange is unavailable: %d of %d partitions have a write quorum of their nodes up\n", h.PartitionsQuorum, h.Partitions))
	case "degraded":
		rc.SetStatusCode(200)
		rc.SetBodyString(fmt.Sprintf("grange is operational, degraded: %d of %d storage nodes are up\n", h.StorageNodesOk, h.StorageNodes))
	default:
		rc.SetStatusCode(200)
		rc.SetBodyString("grange is fully operational\n")
	}
}
