package k2v

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grangeio/grange/clients/internal/sigv4"
)

// Config configures a Client. Zero fields take the defaults given.
type Config struct {
	// Endpoint is the K2V API base URL, e.g. "http://127.0.0.1:3904". It
	// must be http or https with a host and no path: the server reads the
	// bucket from the first path segment and signatures cover the path, so
	// a path prefix cannot be stripped by a proxy.
	Endpoint string
	// Region is the server's region, used in signatures. Default "garage".
	Region string
	// AccessKeyID and SecretAccessKey are the credentials (required: the
	// server refuses anonymous requests).
	AccessKeyID     string
	SecretAccessKey string
	// Bucket is the bucket every call addresses: a bucket alias or the
	// 64-hex-digit bucket id. It must consist of unreserved URL characters
	// (A-Z a-z 0-9 - _ . ~), since the server does not percent-decode it.
	Bucket string
	// HTTPClient sends the requests. nil means a client owned by this
	// Client, with keep-alive and enough idle connections per host for 128
	// concurrent callers, that does not follow redirects, released by
	// Close. A caller-supplied client
	// should have no Timeout shorter than the poll timeouts used: the SDK
	// sets per-request deadlines itself (through ctx) for polls.
	HTTPClient *http.Client
	// UserAgent is sent with every request. Default "grange-k2v-go".
	UserAgent string
}

const (
	defaultRegion    = "garage"
	defaultUserAgent = "grange-k2v-go"
	tokenHeader      = "X-Garage-Causality-Token"

	mimeJSON   = "application/json"
	mimeBinary = "application/octet-stream"

	// drainBytes bounds how much of an unread response body is discarded
	// to keep the connection reusable; beyond it the connection is closed.
	drainBytes = 64 << 10
)

// Client calls the K2V API of one bucket. It is safe for concurrent use.
type Client struct {
	httpClient *http.Client
	// transport is set when the Client created its HTTP client, so that
	// Close releases its idle connections.
	transport *http.Transport

	scheme    string
	host      string // as signed and sent in Host: without a default port
	bucket    string
	userAgent string
	signer    *sigv4.Signer
}

// New checks cfg, fills its defaults and returns a Client. It sends no
// request.
func New(cfg Config) (*Client, error) {
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = defaultUserAgent
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("k2v: config: AccessKeyID and SecretAccessKey are required")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("k2v: config: Bucket is required")
	}
	for i := 0; i < len(cfg.Bucket); i++ {
		if !unreserved(cfg.Bucket[i]) {
			return nil, fmt.Errorf("k2v: config: bucket %q: only A-Z a-z 0-9 - _ . ~ are allowed", cfg.Bucket)
		}
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("k2v: config: endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("k2v: config: endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	if u.User != nil || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("k2v: config: endpoint %q: must have no user, path, query or fragment", cfg.Endpoint)
	}
	host := u.Host
	// Sign what is sent: drop a default port, as AWS signers do.
	if p := u.Port(); u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443" {
		host = strings.TrimSuffix(host, ":"+p)
	}

	c := &Client{
		httpClient: cfg.HTTPClient,
		scheme:     u.Scheme,
		host:       host,
		bucket:     cfg.Bucket,
		userAgent:  cfg.UserAgent,
		signer:     sigv4.New(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Region, "k2v"),
	}
	if c.httpClient == nil {
		c.transport = newTransport()
		c.httpClient = &http.Client{
			Transport: c.transport,
			// K2V never redirects; a redirect (from a proxy) is returned
			// as an *Error rather than followed with a signature made for
			// another URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// newTransport returns the default transport: a fresh one per Client (no
// shared global state), keeping enough idle connections for many
// concurrent callers on one host.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Values are opaque bytes and the server does not compress.
		DisableCompression: true,
	}
}

// Bucket returns the bucket the client addresses.
func (c *Client) Bucket() string { return c.bucket }

// Close releases the idle connections of the HTTP client the Client
// created; it does nothing to a Config.HTTPClient. Requests in flight are
// not interrupted. It is safe to call more than once.
func (c *Client) Close() error {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// request is one K2V call before signing.
type request struct {
	method string
	// pk is the partition key; "" addresses the bucket-level endpoints.
	pk          string
	query       query
	body        []byte
	hasBody     bool
	accept      string
	contentType string
	token       CausalityToken
}

// do signs and sends r. The caller owns the response and must consume it
// with closeBody, decodeJSON or c.fail.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	// Path: the decoded form in URL.Path and the wire form in URL.RawPath,
	// so that net/http sends exactly the escaping we sign.
	path := "/" + c.bucket
	rawPath := path
	if r.pk != "" {
		b := make([]byte, 0, len(rawPath)+1+len(r.pk)+16)
		b = append(b, rawPath...)
		b = append(b, '/')
		rawPath = string(appendEscape(b, r.pk))
		path = path + "/" + r.pk
	}
	rawQuery := string(r.query)

	payloadHash := sigv4.EmptyPayloadHash
	if len(r.body) > 0 {
		payloadHash = sigv4.PayloadHash(r.body)
	}
	signed := [3]sigv4.Header{
		{Name: "host", Value: c.host},
		{Name: "x-amz-content-sha256", Value: payloadHash},
	}
	n := 2
	if !r.token.IsZero() {
		signed[2] = sigv4.Header{Name: "x-garage-causality-token", Value: string(r.token)}
		n = 3
	}
	auth, amzDate := c.signer.Sign(&sigv4.Request{
		Method:      r.method,
		Path:        rawPath,
		RawQuery:    rawQuery,
		Headers:     signed[:n],
		PayloadHash: payloadHash,
	}, time.Now())

	var body io.Reader
	if r.hasBody {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, "", body)
	if err != nil {
		return nil, fmt.Errorf("k2v: %w", err)
	}
	// Reuse the URL that NewRequestWithContext parsed from "".
	*req.URL = url.URL{Scheme: c.scheme, Host: c.host, Path: path, RawPath: rawPath, RawQuery: rawQuery}
	req.Host = c.host

	// One backing array for all header values.
	vals := make([]string, 7)
	vals[0], vals[1], vals[2], vals[3] = auth, amzDate, payloadHash, c.userAgent
	h := req.Header
	h["Authorization"] = vals[0:1:1]
	h["X-Amz-Date"] = vals[1:2:2]
	h["X-Amz-Content-Sha256"] = vals[2:3:3]
	h["User-Agent"] = vals[3:4:4]
	if !r.token.IsZero() {
		vals[4] = string(r.token)
		h[tokenHeader] = vals[4:5:5]
	}
	if r.accept != "" {
		vals[5] = r.accept
		h["Accept"] = vals[5:6:6]
	}
	if r.contentType != "" {
		vals[6] = r.contentType
		h["Content-Type"] = vals[6:7:7]
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("k2v: %w", err)
	}
	return resp, nil
}

// closeBody discards a bounded rest of the body and closes it.
func closeBody(resp *http.Response) {
	if resp.ContentLength != 0 { // net/http gives empty bodies as http.NoBody
		io.CopyN(io.Discard, resp.Body, drainBytes)
	}
	resp.Body.Close()
}

// fail turns an unexpected response into an *Error and consumes it.
func (c *Client) fail(resp *http.Response) error {
	defer closeBody(resp)
	return errorFromResponse(resp, resp.Request.URL.EscapedPath())
}

// decodeJSON decodes the body of a successful response into v, streaming,
// and consumes the response.
func decodeJSON(resp *http.Response, v any) error {
	defer closeBody(resp)
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("k2v: decode %s %s response: %w", resp.Request.Method, resp.Request.URL.EscapedPath(), err)
	}
	return nil
}

// expectNoContent accepts any 2xx (the server answers writes with 204).
func (c *Client) expectNoContent(resp *http.Response) error {
	if resp.StatusCode/100 != 2 {
		return c.fail(resp)
	}
	closeBody(resp)
	return nil
}

// responseToken returns the causality token header of resp.
func responseToken(resp *http.Response) CausalityToken {
	if v := resp.Header[tokenHeader]; len(v) > 0 {
		return CausalityToken(v[0])
	}
	return ""
}

// maxPrealloc bounds the buffer allocated up front from a Content-Length,
// so that a bogus length cannot force a huge allocation before any byte
// arrives.
const maxPrealloc = 4 << 20

// readValue reads a binary value body. Values are what the caller asked
// for, so there is no size cap; the buffer grows as bytes arrive.
func readValue(resp *http.Response) ([]byte, error) {
	defer closeBody(resp)
	n := resp.ContentLength
	if n < 0 || n > maxPrealloc {
		n = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1)) // +1: EOF without a regrow
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("k2v: read value: %w", err)
	}
	return buf.Bytes(), nil
}
