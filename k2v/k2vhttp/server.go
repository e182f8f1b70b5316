// Package k2vhttp serves the K2V HTTP API (k2v-api.md) on fasthttp:
// routing, authentication with AWS Signature V4, bucket resolution and
// permissions, the endpoints, and the mapping of errors to K2V codes.
package k2vhttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/k2v"
	"github.com/grangeio/grange/k2v/sigv4"
)

// Defaults and limits of the K2V endpoint (documented in k2v-api.md §13).
const (
	// DefaultMaxBodyBytes caps request bodies: a value of InsertItem, or a
	// JSON batch.
	DefaultMaxBodyBytes = 16 << 20
	// maxHeaderBytes caps the request line and headers.
	maxHeaderBytes = 16 << 10
	// maxResponseValueBytes bounds the value bytes one ReadBatch response
	// carries; searches beyond it stop early with more=true.
	maxResponseValueBytes = 64 << 20
	// maxSearches bounds the searches of one ReadBatch or DeleteBatch.
	maxSearches = 1000
	// defaultPollTimeout and the clamp of poll timeouts, in seconds.
	defaultPollTimeout = 300
	maxPollTimeout     = 600
	// requestTimeout bounds the work of a non-poll request.
	requestTimeout = 60 * time.Second
)

// Config configures New.
type Config struct {
	// Region is the cluster's region, in which signatures are scoped
	// ("us-east-1" and "auto" are accepted too); empty means "garage".
	Region string
	// Items and Catalog serve the requests.
	Items   *k2v.Items
	Catalog *k2v.Catalog
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Now is the clock for signature dates; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Server is the K2V API server of one node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	verifier *sigv4.Verifier
	http     *fasthttp.Server
	// base is cancelled when the server shuts down, ending long polls.
	base   context.Context
	cancel context.CancelFunc
}

// New returns a server; Serve starts it.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "garage"
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.verifier = sigv4.New(sigv4.Config{
		Service:    "k2v",
		Region:     cfg.Region,
		AltRegions: []string{"us-east-1", "auto"},
		Now:        cfg.Now,
	})
	s.http = &fasthttp.Server{
		Handler:            s.Handle,
		ErrorHandler:       s.transportError,
		Name:               "grange",
		MaxRequestBodySize: cfg.MaxBodyBytes,
		ReadBufferSize:     maxHeaderBytes,
		ReadTimeout:        5 * time.Minute, // a slow client uploading a large batch
		WriteTimeout:       time.Minute,     // set once the handler returned
		IdleTimeout:        2 * time.Minute,
		// bodies are read whole: they are bounded by MaxRequestBodySize
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{log},
	}
	return s
}

// Serve serves the API on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown ends long polls, stops accepting connections and waits for the
// requests in progress to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	return s.http.ShutdownWithContext(ctx)
}

// call is the state of one request while it is handled.
type call struct {
	s      *Server
	rc     *fasthttp.RequestCtx
	path   string // raw request path, for error bodies
	req    *Request
	key    *k2v.Key
	bucket *k2v.Bucket
	body   []byte
}

// Handle serves one request. fasthttp recycles rc when it returns: nothing
// here keeps a reference to it or to its buffers.
func (s *Server) Handle(rc *fasthttp.RequestCtx) {
	c := &call{s: s, rc: rc}
	rawPath, rawQuery := splitRequestURI(string(rc.Request.Header.RequestURI()))
	c.path = rawPath
	if err := c.serve(rawPath, rawQuery); err != nil {
		c.writeError(err)
	}
}

// splitRequestURI splits a request target into raw path and raw query,
// accepting the absolute form ("http://host/path?q").
func splitRequestURI(uri string) (path, query string) {
	if i := strings.Index(uri, "://"); i >= 0 && !strings.HasPrefix(uri, "/") {
		rest := uri[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			uri = rest[j:]
		} else {
			uri = "/"
		}
	}
	path, query, _ = strings.Cut(uri, "?")
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	return path, query
}

func (c *call) serve(rawPath, rawQuery string) error {
	req, err := ParseRequest(string(c.rc.Method()), rawPath, rawQuery)
	if err != nil {
		return err
	}
	c.req = req
	if req.Endpoint == Options {
		return c.preflight()
	}
	if err := c.authenticate(rawPath, rawQuery); err != nil {
		return err
	}
	if c.bucket, err = c.s.cfg.Catalog.ResolveBucket(c.key, req.Bucket); err != nil {
		return err
	}
	perm := c.key.Perm(c.bucket.ID)
	if (req.Endpoint.readOnly() && !perm.Read) || (!req.Endpoint.readOnly() && !perm.Write) {
		return &apiError{status: 403, code: "AccessDenied", msg: "Operation is not allowed for this key."}
	}
	c.addCORSHeaders()
	timeout := requestTimeout
	if req.Endpoint == PollItem || req.Endpoint == PollRange {
		timeout += maxPollTimeout * time.Second
	}
	ctx, cancel := context.WithTimeout(c.s.base, timeout)
	defer cancel()
	switch req.Endpoint {
	case ReadItem:
		return c.readItem(ctx)
	case PollItem:
		return c.pollItem(ctx)
	case InsertItem:
		return c.insertItem(ctx, false)
	case DeleteItem:
		return c.insertItem(ctx, true)
	case ReadIndex:
		return c.readIndex(ctx)
	case InsertBatch:
		return c.insertBatch(ctx)
	case ReadBatch:
		return c.readBatch(ctx)
	case DeleteBatch:
		return c.deleteBatch(ctx)
	case PollRange:
		return c.pollRange(ctx)
	}
	return fmt.Errorf("k2vhttp: endpoint %v not handled", req.Endpoint)
}

// authenticate verifies the request's signature and reads its body,
// checked against the signed payload hash.
func (c *call) authenticate(rawPath, rawQuery string) error {
	h := &c.rc.Request.Header
	sreq := &sigv4.Request{
		Method:   string(c.rc.Method()),
		RawPath:  rawPath,
		RawQuery: rawQuery,
	}
	for name, value := range h.All() {
		sreq.Headers = append(sreq.Headers, sigv4.Header{Name: string(name), Value: string(value)})
	}
	auth, err := c.s.verifier.Verify(sreq, func(id string) (string, error) {
		k, err := c.s.cfg.Catalog.Key(id)
		if errors.Is(err, k2v.ErrNoSuchKey) {
			return "", fmt.Errorf("%w: %s", sigv4.ErrUnknownKey, id)
		}
		if err != nil {
			return "", err
		}
		c.key = k
		return k.Secret, nil
	})
	if err != nil {
		return err
	}
	body := c.rc.Request.Body()
	switch auth.Mode {
	case sigv4.PayloadSHA256, sigv4.PayloadUnsigned:
		if err := auth.CheckPayload(body); err != nil {
			return err
		}
		c.body = body
	default:
		// aws-chunked: every chunk signature is verified before its data is
		// used; the decoded body is never larger than the raw one.
		decoded, err := io.ReadAll(auth.NewChunkedReader(bytes.NewReader(body)))
		if err != nil {
			return err
		}
		c.body = decoded
	}
	return nil
}

// visibleASCII reports whether a header value is made of visible ASCII,
// spaces and tabs, as HTTP header values must be.
func visibleASCII(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// header returns a request header's value and whether it is present at
// all: an empty value is not an absent header (an empty Accept is a 406,
// an empty token a 400).
func (c *call) header(name string) (value string, present bool, err error) {
	for k, v := range c.rc.Request.Header.All() {
		if !strings.EqualFold(string(k), name) {
			continue
		}
		if !visibleASCII(v) {
			return "", true, &apiError{status: 400, code: "InvalidHeaderValue", msg: "Invalid header value: " + name}
		}
		return string(v), true, nil
	}
	return "", false, nil
}

func (c *call) writeJSON(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.rc.SetStatusCode(status)
	c.rc.SetContentType("application/json")
	c.rc.SetBody(b)
	return nil
}

// errorBody is the JSON body of every error response (k2v-api.md §12).
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Region  string `json:"region"`
	Path    string `json:"path"`
}

func (c *call) writeError(err error) {
	status, code, msg, internal := classify(err)
	if internal {
		var id [8]byte
		rand.Read(id[:])
		rid := hex.EncodeToString(id[:])
		c.s.log.Error("k2v request failed", "request_id", rid, "endpoint", c.endpoint(), "err", err)
		msg = "Internal error (request id " + rid + ")"
	} else {
		c.s.log.Debug("k2v request refused", "endpoint", c.endpoint(), "code", code, "err", err)
	}
	resp := &c.rc.Response
	resp.Reset()
	c.rc.SetStatusCode(status)
	c.rc.SetContentType("application/json")
	b, _ := json.Marshal(errorBody{Code: code, Message: msg, Region: c.s.cfg.Region, Path: c.path})
	c.rc.SetBody(b)
}

func (c *call) endpoint() string {
	if c.req == nil {
		return "Unknown"
	}
	return c.req.Endpoint.String()
}

// transportError answers what fasthttp refuses before the handler: bodies
// over the cap, headers too large, malformed HTTP.
func (s *Server) transportError(rc *fasthttp.RequestCtx, err error) {
	status, code, msg := 400, "InvalidRequest", "Malformed HTTP request"
	var tooLarge *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, msg = 413, "EntityTooLarge", fmt.Sprintf("Request body larger than %d bytes", s.cfg.MaxBodyBytes)
	case errors.As(err, &tooLarge):
		status, code, msg = 431, "RequestHeaderFieldsTooLarge", fmt.Sprintf("Request headers larger than %d bytes", maxHeaderBytes)
	}
	path, _ := splitRequestURI(string(rc.Request.Header.RequestURI()))
	rc.Response.Reset()
	rc.SetStatusCode(status)
	rc.SetContentType("application/json")
	b, _ := json.Marshal(errorBody{Code: code, Message: msg, Region: s.cfg.Region, Path: path})
	rc.SetBody(b)
	rc.SetConnectionClose()
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}
