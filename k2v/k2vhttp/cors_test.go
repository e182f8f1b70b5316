package k2vhttp

import (
	"strings"
	"testing"

	"github.com/grangeio/grange/k2v"
)

// preflight sends an unsigned OPTIONS request with the given headers.
func (ts *testServer) preflight(path string, headers ...string) *response {
	ts.t.Helper()
	return ts.send(ts.request("OPTIONS", path, nil, headers...))
}

// TestCORSPreflight checks §3.6: OPTIONS is answered before any
// authentication.
func TestCORSPreflight(t *testing.T) {
	ts := startServer(t)
	if _, err := ts.catalog.CreateBucket("", &k2v.LocalAliasSpec{KeyID: ts.key.ID, Alias: "mine", Allow: k2v.Perm{Read: true}}); err != nil {
		t.Fatal(err)
	}
	const origin = "https://example.com"

	// a global alias without CORS rules: nothing matches → 400
	r := ts.preflight("/app/pk?sort_key=s", "Origin", origin, "Access-Control-Request-Method", "GET")
	e := wantError(t, "no rules", r, 400, "InvalidRequest")
	wantMessage(t, "no rules", e, "Error handling OPTIONS")

	err := ts.catalog.SetCORS(ts.bucket.ID, []k2v.CORSRule{{
		AllowedOrigins: []string{origin},
		AllowedMethods: []string{"GET", "POST"},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"X-Garage-Causality-Token"},
		MaxAgeSeconds:  -1,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/app", "/app/pk?sort_key=s", "/app?search&delete", "/app/pk?poll_range"} {
		r = ts.preflight(path, "Origin", origin, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "x-garage-causality-token, content-type")
		if r.status != 200 {
			t.Errorf("OPTIONS %s, matching rule: %d %s, want 200", path, r.status, r.body)
			continue
		}
		h := r.header
		if got := h.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Origin %q, want %q", path, got, origin)
		}
		if got := h.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "GET") {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Methods %q, want GET in it", path, got)
		}
		if got := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "x-garage-causality-token") {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Headers %q, want the requested headers", path, got)
		}
		if got := h.Get("Access-Control-Expose-Headers"); got != "X-Garage-Causality-Token" {
			t.Errorf("OPTIONS %s: Access-Control-Expose-Headers %q, want X-Garage-Causality-Token", path, got)
		}
	}
	// no matching rule, or a missing header → 400 (not 403)
	for _, tt := range []struct {
		name    string
		headers []string
	}{
		{"other origin", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "GET"}},
		{"method not allowed", []string{"Origin", origin, "Access-Control-Request-Method", "PUT"}},
		{"missing Origin", []string{"Access-Control-Request-Method", "GET"}},
		{"missing request method", []string{"Origin", origin}},
		{"no headers", nil},
	} {
		r := ts.preflight("/app/pk", tt.headers...)
		e := wantError(t, tt.name, r, 400, "InvalidRequest")
		wantMessage(t, tt.name, e, "Error handling OPTIONS")
	}
	// not a global alias (unknown, a key-local alias, a bucket id): 200 with *
	for _, path := range []string{"/nosuchbucket", "/nosuchbucket/pk?search&delete&sort_key=a&sort_key=b", "/mine/pk", "/%FF/x", "/" + ts.bucket.ID.String() + "/pk"} {
		r := ts.preflight(path)
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Methods") != "*" {
			t.Errorf("OPTIONS %s: %d, Allow-Origin %q, Allow-Methods %q; want 200 * *", path, r.status,
				r.header.Get("Access-Control-Allow-Origin"), r.header.Get("Access-Control-Allow-Methods"))
		}
	}
	// a signed OPTIONS is answered the same way
	r = ts.do("OPTIONS", "/nosuchbucket/pk", nil)
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("signed OPTIONS: %d %v", r.status, r.header)
	}
}

// TestCORSResponseHeaders: successful GET and POST requests with a matching
// Origin carry the Access-Control headers.
func TestCORSResponseHeaders(t *testing.T) {
	ts := startServer(t)
	const origin = "https://app.example"
	if err := ts.catalog.SetCORS(ts.bucket.ID, []k2v.CORSRule{{
		AllowedOrigins: []string{"https://*.example"},
		AllowedMethods: []string{"GET", "POST"},
		ExposeHeaders:  []string{"X-Garage-Causality-Token"},
		MaxAgeSeconds:  -1,
	}}); err != nil {
		t.Fatal(err)
	}
	ts.put("pk", "s", "v", "")
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/app/pk?sort_key=s", ""},
		{"GET", "/app", ""},
		{"POST", "/app?search", `[{"partitionKey":"pk"}]`},
	} {
		what := req.method + " " + req.path
		r := ts.do(req.method, req.path, []byte(req.body), "Origin", origin)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", what, got, origin)
		}
		if got := r.header.Get("Access-Control-Expose-Headers"); got != "X-Garage-Causality-Token" {
			t.Errorf("%s: Access-Control-Expose-Headers %q", what, got)
		}
		r = ts.do(req.method, req.path, []byte(req.body), "Origin", "https://other.test")
		if got := r.header.Get("Access-Control-Allow-Origin"); r.status != 200 || got != "" {
			t.Errorf("%s from a non-matching origin: %d, Access-Control-Allow-Origin %q, want 200 and none", what, r.status, got)
		}
	}
}
