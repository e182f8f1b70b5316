package k2v

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "mailbox", "mailbox"},
		{"unreserved kept", "aZ09-_.~", "aZ09-_.~"},
		{"slash", "a/b", "a%2Fb"},
		{"leading slash", "/a", "%2Fa"},
		{"only slashes", "//", "%2F%2F"},
		{"percent", "100%", "100%25"},
		{"encoded-looking", "a%2Fb", "a%252Fb"},
		{"plus", "a+b", "a%2Bb"},
		{"space", "a b", "a%20b"},
		{"unicode", "été", "%C3%A9t%C3%A9"},
		{"emoji", "📬", "%F0%9F%93%AC"},
		{"reserved", ":@!$&'()*,;=?#[]", "%3A%40%21%24%26%27%28%29%2A%2C%3B%3D%3F%23%5B%5D"},
		{"dots", "..", ".."},
		{"control", "\x00\n\x7f", "%00%0A%7F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := escape(tt.in); got != tt.want {
				t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// A server decodes it back: path segments percent-decoded,
			// query values form-decoded.
			if got, err := url.PathUnescape(tt.want); err != nil || got != tt.in {
				t.Errorf("PathUnescape(%q) = %q, %v; want %q", tt.want, got, err, tt.in)
			}
			if got, err := url.QueryUnescape(tt.want); err != nil || got != tt.in {
				t.Errorf("QueryUnescape(%q) = %q, %v; want %q", tt.want, got, err, tt.in)
			}
		})
	}
}

func TestQueryBuilder(t *testing.T) {
	tests := []struct {
		name string
		q    query
		want string
	}{
		{"empty values dropped", newQuery().add("prefix", "").add("start", ""), ""},
		{"sort key", newQuery().add("sort_key", "a+b c/d%"), "sort_key=a%2Bb%20c%2Fd%25"},
		{"keyword", newQuery().keyword("search"), "search"},
		{"several", newQuery().add("sort_key", "x").add("causality_token", "6j3p-_A").add("timeout", "10"), "sort_key=x&causality_token=6j3p-_A&timeout=10"},
	}
	for _, tt := range tests {
		if got := string(tt.q); got != tt.want {
			t.Errorf("%s: query = %q, want %q", tt.name, got, tt.want)
		}
		// Form-decoding gives back the values.
		if _, err := url.ParseQuery(string(tt.q)); err != nil {
			t.Errorf("%s: ParseQuery(%q): %v", tt.name, tt.q, err)
		}
	}
	v, _ := url.ParseQuery(string(newQuery().add("sort_key", "a+b c")))
	if got := v.Get("sort_key"); got != "a+b c" {
		t.Errorf("sort_key decodes to %q, want %q", got, "a+b c")
	}
}

// errCaptured ends every request sent through a captureTransport.
var errCaptured = errors.New("captured, not sent")

// captureTransport records the requests a Client builds and sends none:
// no server answers, the tests only look at the wire form.
type captureTransport struct {
	reqs   []*http.Request
	bodies [][]byte
}

func (c *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	c.reqs = append(c.reqs, req)
	c.bodies = append(c.bodies, body)
	return nil, errCaptured
}

const (
	testAccessKey = "GK31c2f218a2e44f485b94239e"
	testSecret    = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835"
)

func newCaptureClient(t *testing.T) (*Client, *captureTransport) {
	t.Helper()
	tr := &captureTransport{}
	c, err := New(Config{
		Endpoint:        "http://127.0.0.1:3904",
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecret,
		Bucket:          "app",
		HTTPClient:      &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// TestWireRequests checks, for every endpoint, the request line, the
// headers and the body the client sends, and that its signature is the
// one aws-sdk-go-v2's signer computes for the same request.
func TestWireRequests(t *testing.T) {
	ctx := context.Background()
	const tok = CausalityToken("S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA")
	tests := []struct {
		name       string
		call       func(c *Client) error
		method     string
		requestURI string
		accept     string
		token      string
		body       string
	}{
		{
			name:       "ReadItem",
			call:       func(c *Client) error { _, err := c.ReadItem(ctx, "mailboxes", "INBOX"); return err },
			method:     "GET",
			requestURI: "/app/mailboxes?sort_key=INBOX",
			accept:     "application/json",
		},
		{
			name:       "ReadItem with special keys",
			call:       func(c *Client) error { _, err := c.ReadItem(ctx, "/a/b c", "x+y z%"); return err },
			method:     "GET",
			requestURI: "/app/%2Fa%2Fb%20c?sort_key=x%2By%20z%25",
			accept:     "application/json",
		},
		{
			name:       "ReadValue",
			call:       func(c *Client) error { _, _, err := c.ReadValue(ctx, "é", "k"); return err },
			method:     "GET",
			requestURI: "/app/%C3%A9?sort_key=k",
			accept:     "application/octet-stream",
		},
		{
			name: "PollItem",
			call: func(c *Client) error {
				_, _, err := c.PollItem(ctx, "mailboxes", "INBOX", tok, &PollOptions{Timeout: 1500 * time.Millisecond})
				return err
			},
			method:     "GET",
			requestURI: "/app/mailboxes?sort_key=INBOX&causality_token=S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA&timeout=2",
			accept:     "application/json",
		},
		{
			name:       "PollItem zero token",
			call:       func(c *Client) error { _, _, err := c.PollItem(ctx, "p", "s", "", nil); return err },
			method:     "GET",
			requestURI: "/app/p?sort_key=s&causality_token=AAAAAAAAAAA",
			accept:     "application/json",
		},
		{
			name:       "InsertItem",
			call:       func(c *Client) error { return c.InsertItem(ctx, "mailboxes", "INBOX", []byte("hello"), tok) },
			method:     "PUT",
			requestURI: "/app/mailboxes?sort_key=INBOX",
			token:      string(tok),
			body:       "hello",
		},
		{
			name:       "InsertItem empty value no token",
			call:       func(c *Client) error { return c.InsertItem(ctx, "p", "s", nil, "") },
			method:     "PUT",
			requestURI: "/app/p?sort_key=s",
		},
		{
			name:       "DeleteItem",
			call:       func(c *Client) error { return c.DeleteItem(ctx, "p", "s", tok) },
			method:     "DELETE",
			requestURI: "/app/p?sort_key=s",
			token:      string(tok),
		},
		{
			name: "ReadIndex",
			call: func(c *Client) error {
				_, err := c.ReadIndex(ctx, &ReadIndexOptions{Prefix: "mail box", Start: "mail box+1", End: "n", Limit: 10, Reverse: true})
				return err
			},
			method:     "GET",
			requestURI: "/app?prefix=mail%20box&start=mail%20box%2B1&end=n&limit=10&reverse=true",
			accept:     "application/json",
		},
		{
			name:       "ReadIndex default",
			call:       func(c *Client) error { _, err := c.ReadIndex(ctx, nil); return err },
			method:     "GET",
			requestURI: "/app",
			accept:     "application/json",
		},
		{
			name: "InsertBatch",
			call: func(c *Client) error {
				return c.InsertBatch(ctx, []InsertOp{{PartitionKey: "p", SortKey: "s", Value: Bytes([]byte("x"))}})
			},
			method:     "POST",
			requestURI: "/app",
			body:       `[{"pk":"p","sk":"s","ct":null,"v":"eA=="}]`,
		},
		{
			name: "ReadBatch",
			call: func(c *Client) error {
				_, err := c.ReadBatch(ctx, []Search{{PartitionKey: "p", Limit: 1}})
				return err
			},
			method:     "POST",
			requestURI: "/app?search",
			accept:     "application/json",
			body:       `[{"partitionKey":"p","prefix":null,"start":null,"end":null,"limit":1,"reverse":false,"singleItem":false,"conflictsOnly":false,"tombstones":false}]`,
		},
		{
			name: "DeleteBatch",
			call: func(c *Client) error {
				_, err := c.DeleteBatch(ctx, []DeleteSearch{{PartitionKey: "p", Prefix: "a"}})
				return err
			},
			method:     "POST",
			requestURI: "/app?delete",
			accept:     "application/json",
			body:       `[{"partitionKey":"p","prefix":"a","start":null,"end":null,"singleItem":false}]`,
		},
		{
			name: "PollRange",
			call: func(c *Client) error {
				_, _, err := c.PollRange(ctx, "/p", "KLUv/QBY+/=", &PollRangeOptions{Prefix: "0391.", Timeout: time.Minute})
				return err
			},
			method:     "POST",
			requestURI: "/app/%2Fp?poll_range",
			accept:     "application/json",
			body:       `{"prefix":"0391.","start":"0391.","end":null,"timeout":60,"seenMarker":"KLUv/QBY+/="}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tr := newCaptureClient(t)
			if err := tt.call(c); !errors.Is(err, errCaptured) {
				t.Fatalf("call error = %v, want the capture error", err)
			}
			if len(tr.reqs) != 1 {
				t.Fatalf("%d requests sent, want 1", len(tr.reqs))
			}
			req, body := tr.reqs[0], tr.bodies[0]
			if req.Method != tt.method {
				t.Errorf("method = %s, want %s", req.Method, tt.method)
			}
			if got := req.URL.RequestURI(); got != tt.requestURI {
				t.Errorf("request URI = %s, want %s", got, tt.requestURI)
			}
			if req.Host != "127.0.0.1:3904" {
				t.Errorf("Host = %q", req.Host)
			}
			if got := req.Header.Get("Accept"); got != tt.accept {
				t.Errorf("Accept = %q, want %q", got, tt.accept)
			}
			if got := req.Header.Get("X-Garage-Causality-Token"); got != tt.token {
				t.Errorf("token header = %q, want %q", got, tt.token)
			}
			if string(body) != tt.body {
				t.Errorf("body = %s, want %s", body, tt.body)
			}
			if req.ContentLength != int64(len(tt.body)) {
				t.Errorf("ContentLength = %d, want %d", req.ContentLength, len(tt.body))
			}
			if got := req.Header.Get("User-Agent"); got != defaultUserAgent {
				t.Errorf("User-Agent = %q", got)
			}
			checkAWSSignature(t, req, body)
		})
	}
}

// checkAWSSignature re-signs req with aws-sdk-go-v2, giving it the headers
// we sign, and compares the Authorization headers.
func checkAWSSignature(t *testing.T, req *http.Request, body []byte) {
	t.Helper()
	date, err := time.Parse("20060102T150405Z", req.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	hash := req.Header.Get("X-Amz-Content-Sha256")
	if want := sha256Hex(body); hash != want {
		t.Errorf("X-Amz-Content-Sha256 = %s, want %s", hash, want)
	}
	u := *req.URL
	aws2 := &http.Request{Method: req.Method, URL: &u, Host: req.Host, Header: http.Header{}}
	aws2.Header.Set("X-Amz-Content-Sha256", hash)
	if tok := req.Header.Get("X-Garage-Causality-Token"); tok != "" {
		aws2.Header.Set("X-Garage-Causality-Token", tok)
	}
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	if err := awsv4.NewSigner().SignHTTP(context.Background(), creds, aws2, hash, "k2v", "garage", date); err != nil {
		t.Fatal(err)
	}
	if got, want := req.Header.Get("Authorization"), aws2.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(req.Header.Get("Authorization"), "/garage/k2v/aws4_request") {
		t.Errorf("Authorization scope: %s", req.Header.Get("Authorization"))
	}
}

func TestArgumentsRejectedBeforeSending(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(c *Client) error{
		"empty pk":            func(c *Client) error { _, err := c.ReadItem(ctx, "", "s"); return err },
		"empty sk":            func(c *Client) error { return c.InsertItem(ctx, "p", "", nil, "") },
		"invalid UTF-8 pk":    func(c *Client) error { return c.DeleteItem(ctx, "\xff", "s", "") },
		"invalid UTF-8 batch": func(c *Client) error { return c.InsertBatch(ctx, []InsertOp{{PartitionKey: "p", SortKey: "\xc3"}}) },
		"negative limit": func(c *Client) error {
			_, err := c.ReadBatch(ctx, []Search{{PartitionKey: "p", Limit: -1}})
			return err
		},
		"poll range empty pk": func(c *Client) error { _, _, err := c.PollRange(ctx, "", "", nil); return err },
		"scan bad prefix": func(c *Client) error {
			for _, err := range c.Scan(ctx, "p", &ScanOptions{Prefix: "\xff"}) {
				return err
			}
			return nil
		},
	}
	for name, call := range calls {
		c, tr := newCaptureClient(t)
		if err := call(c); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument", name, err)
		}
		if len(tr.reqs) != 0 {
			t.Errorf("%s: %d requests sent", name, len(tr.reqs))
		}
	}
}

func TestNewConfig(t *testing.T) {
	base := Config{Endpoint: "http://127.0.0.1:3904", AccessKeyID: "a", SecretAccessKey: "s", Bucket: "b"}
	bad := map[string]func(*Config){
		"no key":         func(c *Config) { c.AccessKeyID = "" },
		"no secret":      func(c *Config) { c.SecretAccessKey = "" },
		"no bucket":      func(c *Config) { c.Bucket = "" },
		"bucket slash":   func(c *Config) { c.Bucket = "a/b" },
		"bucket space":   func(c *Config) { c.Bucket = "a b" },
		"no scheme":      func(c *Config) { c.Endpoint = "127.0.0.1:3904" },
		"ftp":            func(c *Config) { c.Endpoint = "ftp://h" },
		"path":           func(c *Config) { c.Endpoint = "http://h/k2v" },
		"query":          func(c *Config) { c.Endpoint = "http://h/?x=1" },
		"user":           func(c *Config) { c.Endpoint = "http://u:p@h" },
		"empty endpoint": func(c *Config) { c.Endpoint = "" },
	}
	for name, mod := range bad {
		cfg := base
		mod(&cfg)
		if c, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded: %+v", name, c)
		}
	}
	hosts := map[string]string{
		"http://127.0.0.1:3904":  "127.0.0.1:3904",
		"http://h:80/":           "h",
		"https://h:443":          "h",
		"https://h:80":           "h:80",
		"http://[::1]:3904":      "[::1]:3904",
		"http://[::1]:80":        "[::1]",
		"http://k2v.example.com": "k2v.example.com",
	}
	for ep, want := range hosts {
		cfg := base
		cfg.Endpoint = ep
		c, err := New(cfg)
		if err != nil {
			t.Errorf("New(%s): %v", ep, err)
			continue
		}
		if c.host != want {
			t.Errorf("New(%s): host %q, want %q", ep, c.host, want)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		c.Close() // twice is fine
	}
	c, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.transport == nil || c.transport.MaxIdleConnsPerHost < 64 {
		t.Errorf("default transport: %+v", c.transport)
	}
	if c.Bucket() != "b" {
		t.Errorf("Bucket() = %q", c.Bucket())
	}
}

func TestPollTimeout(t *testing.T) {
	tests := []struct {
		in       time.Duration
		seconds  int
		deadline time.Duration
	}{
		{0, 0, 300*time.Second + pollSlack},
		{-time.Second, 0, 300*time.Second + pollSlack},
		{time.Millisecond, 1, time.Second + pollSlack},
		{1500 * time.Millisecond, 2, 2*time.Second + pollSlack},
		{30 * time.Second, 30, 30*time.Second + pollSlack},
		{time.Hour, 600, 600*time.Second + pollSlack},
	}
	for _, tt := range tests {
		s, d := pollTimeout(tt.in)
		if s != tt.seconds || d != tt.deadline {
			t.Errorf("pollTimeout(%v) = %d, %v; want %d, %v", tt.in, s, d, tt.seconds, tt.deadline)
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
