package k2vhttp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// showRequest prints a routed request with every field, for comparisons.
func showRequest(r *Request) string {
	if r == nil {
		return "<nil>"
	}
	u := func(p *uint64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	b := func(p *bool) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%v bucket=%q pk=%q sk=%q ct=%q timeout=%s prefix=%s start=%s end=%s limit=%s reverse=%s",
		r.Endpoint, r.Bucket, r.Partition, r.SortKey, r.CausalityToken, u(r.Timeout),
		showStr(r.Prefix), showStr(r.Start), showStr(r.End), u(r.Limit), b(r.Reverse))
}

func u64(n uint64) *uint64 { return &n }
func boolp(b bool) *bool   { return &b }

// TestParseRequest checks routing (§2.2), path splitting (§2.1) and query
// parsing (§2.3) on ParseRequest directly.
func TestParseRequest(t *testing.T) {
	const tok = "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"
	type want = Request
	tests := []struct {
		name                string
		method, path, query string
		want                *want  // nil when an error is expected
		code, msg           string // the error's code and message prefix
	}{
		// §2.2, one row of the table each
		{name: "GET key token = PollItem", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok,
			want: &want{Endpoint: PollItem, Bucket: "app", Partition: "pk", SortKey: "s", CausalityToken: tok}},
		{name: "PollItem timeout", method: "GET", path: "/app/pk", query: "causality_token=" + tok + "&timeout=7&sort_key=s",
			want: &want{Endpoint: PollItem, Bucket: "app", Partition: "pk", SortKey: "s", CausalityToken: tok, Timeout: u64(7)}},
		{name: "GET key = ReadItem", method: "GET", path: "/app/pk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "GET no key = ReadIndex", method: "GET", path: "/app", query: "",
			want: &want{Endpoint: ReadIndex, Bucket: "app"}},
		{name: "ReadIndex params", method: "GET", path: "/app", query: "prefix=a&start=ab&end=z&limit=10&reverse=true",
			want: &want{Endpoint: ReadIndex, Bucket: "app", Prefix: strp("a"), Start: strp("ab"), End: strp("z"), Limit: u64(10), Reverse: boolp(true)}},
		{name: "ReadIndex reverse false limit 0", method: "GET", path: "/app", query: "reverse=false&limit=0",
			want: &want{Endpoint: ReadIndex, Bucket: "app", Limit: u64(0), Reverse: boolp(false)}},
		{name: "PUT key = InsertItem", method: "PUT", path: "/app/pk", query: "sort_key=s",
			want: &want{Endpoint: InsertItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "DELETE key = DeleteItem", method: "DELETE", path: "/app/pk", query: "sort_key=s",
			want: &want{Endpoint: DeleteItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "POST no key = InsertBatch", method: "POST", path: "/app", query: "",
			want: &want{Endpoint: InsertBatch, Bucket: "app"}},
		{name: "POST search = ReadBatch", method: "POST", path: "/app", query: "search",
			want: &want{Endpoint: ReadBatch, Bucket: "app"}},
		{name: "keyword value ignored", method: "POST", path: "/app", query: "search=whatever",
			want: &want{Endpoint: ReadBatch, Bucket: "app"}},
		{name: "keyword empty value", method: "POST", path: "/app", query: "search=",
			want: &want{Endpoint: ReadBatch, Bucket: "app"}},
		{name: "SEARCH no key = ReadBatch", method: "SEARCH", path: "/app", query: "",
			want: &want{Endpoint: ReadBatch, Bucket: "app"}},
		{name: "POST delete = DeleteBatch", method: "POST", path: "/app", query: "delete",
			want: &want{Endpoint: DeleteBatch, Bucket: "app"}},
		{name: "POST key poll_range = PollRange", method: "POST", path: "/app/pk", query: "poll_range",
			want: &want{Endpoint: PollRange, Bucket: "app", Partition: "pk"}},
		{name: "SEARCH key poll_range = PollRange", method: "SEARCH", path: "/app/pk", query: "poll_range",
			want: &want{Endpoint: PollRange, Bucket: "app", Partition: "pk"}},
		{name: "OPTIONS bucket", method: "OPTIONS", path: "/app", query: "",
			want: &want{Endpoint: Options, Bucket: "app"}},
		{name: "OPTIONS key", method: "OPTIONS", path: "/app/pk", query: "sort_key=s",
			want: &want{Endpoint: Options, Bucket: "app"}},
		{name: "OPTIONS any query", method: "OPTIONS", path: "/app/pk", query: "search&delete&sort_key=a&sort_key=b",
			want: &want{Endpoint: Options, Bucket: "app"}},

		// other methods
		{name: "HEAD", method: "HEAD", path: "/app/pk", query: "sort_key=s", code: "InvalidRequest", msg: "Unknown method"},
		{name: "HEAD bucket", method: "HEAD", path: "/app", code: "InvalidRequest", msg: "Unknown method"},
		{name: "PATCH", method: "PATCH", path: "/app/pk", query: "sort_key=s", code: "InvalidRequest", msg: "Unknown method"},
		{name: "TRACE", method: "TRACE", path: "/app", code: "InvalidRequest", msg: "Unknown method"},
		{name: "lower-case get", method: "get", path: "/app/pk", query: "sort_key=s", code: "InvalidRequest", msg: "Unknown method"},

		// unsupported combinations
		{name: "POST key without poll_range", method: "POST", path: "/app/pk", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "POST key search", method: "POST", path: "/app/pk", query: "search", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "POST key delete", method: "POST", path: "/app/pk", query: "delete", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "POST bucket poll_range", method: "POST", path: "/app", query: "poll_range", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "PUT bucket", method: "PUT", path: "/app", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "PUT bucket sort_key", method: "PUT", path: "/app", query: "sort_key=s", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "PUT key keyword", method: "PUT", path: "/app/pk", query: "sort_key=s&delete", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "GET bucket search", method: "GET", path: "/app", query: "search", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "GET key search", method: "GET", path: "/app/pk", query: "sort_key=s&search", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "GET key poll_range", method: "GET", path: "/app/pk", query: "sort_key=s&poll_range", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "DELETE bucket", method: "DELETE", path: "/app", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "DELETE bucket delete", method: "DELETE", path: "/app", query: "delete", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "SEARCH key", method: "SEARCH", path: "/app/pk", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "SEARCH bucket poll_range", method: "SEARCH", path: "/app", query: "poll_range", code: "InvalidRequest", msg: "Invalid endpoint"},
		{name: "SEARCH bucket search", method: "SEARCH", path: "/app", query: "search", code: "InvalidRequest", msg: "Invalid endpoint"},

		// §2.1 bucket name
		{name: "empty path", method: "GET", path: "", code: "InvalidRequest"},
		{name: "root", method: "GET", path: "/", code: "InvalidRequest"},
		{name: "only slashes", method: "POST", path: "///", query: "search", code: "InvalidRequest"},
		{name: "OPTIONS root", method: "OPTIONS", path: "/", code: "InvalidRequest"},
		{name: "leading slashes removed", method: "GET", path: "///app", want: &want{Endpoint: ReadIndex, Bucket: "app"}},
		{name: "bucket then slashes is bucket-level", method: "GET", path: "/app//", want: &want{Endpoint: ReadIndex, Bucket: "app"}},
		{name: "bucket trailing slash", method: "POST", path: "/app/", query: "search", want: &want{Endpoint: ReadBatch, Bucket: "app"}},
		{name: "bucket not decoded", method: "GET", path: "/ap%70/pk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "ap%70", Partition: "pk", SortKey: "s"}},
		{name: "bucket with encoded slash", method: "GET", path: "/app%2Fx/pk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app%2Fx", Partition: "pk", SortKey: "s"}},

		// §2.1 partition key
		{name: "literal slashes", method: "GET", path: "/app/a/b/c", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a/b/c", SortKey: "s"}},
		{name: "encoded slashes", method: "GET", path: "/app/a%2Fb%2Fc", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a/b/c", SortKey: "s"}},
		{name: "lower-case escapes", method: "GET", path: "/app/a%2fb%2fc", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a/b/c", SortKey: "s"}},
		{name: "slashes before key stripped", method: "GET", path: "///app///pk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "leading slash encoded", method: "GET", path: "/app/%2Fpk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "/pk", SortKey: "s"}},
		{name: "leading slash encoded after literal", method: "GET", path: "/app//%2Fpk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "/pk", SortKey: "s"}},
		{name: "two encoded leading slashes", method: "GET", path: "/app/%2F%2Fpk", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "//pk", SortKey: "s"}},
		{name: "inner and trailing slashes kept", method: "GET", path: "/app/a//b/", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a//b/", SortKey: "s"}},
		{name: "dot", method: "GET", path: "/app/.", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: ".", SortKey: "s"}},
		{name: "dot dot", method: "GET", path: "/app/..", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "..", SortKey: "s"}},
		{name: "dot segment", method: "PUT", path: "/app/./x", query: "sort_key=s",
			want: &want{Endpoint: InsertItem, Bucket: "app", Partition: "./x", SortKey: "s"}},
		{name: "dot dot segment", method: "PUT", path: "/app/../x", query: "sort_key=s",
			want: &want{Endpoint: InsertItem, Bucket: "app", Partition: "../x", SortKey: "s"}},
		{name: "inner dot dot", method: "DELETE", path: "/app/a/../b", query: "sort_key=s",
			want: &want{Endpoint: DeleteItem, Bucket: "app", Partition: "a/../b", SortKey: "s"}},
		{name: "encoded dots", method: "GET", path: "/app/%2E%2E", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "..", SortKey: "s"}},
		{name: "space", method: "GET", path: "/app/a%20b", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a b", SortKey: "s"}},
		{name: "plus in path is not a space", method: "GET", path: "/app/a+b", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "a+b", SortKey: "s"}},
		{name: "UTF-8", method: "GET", path: "/app/%C3%A9t%C3%A9%F0%9F%98%80", query: "sort_key=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "été😀", SortKey: "s"}},
		{name: "poll_range key decoded", method: "POST", path: "/app/mailbox%3AINBOX", query: "poll_range",
			want: &want{Endpoint: PollRange, Bucket: "app", Partition: "mailbox:INBOX"}},
		{name: "invalid UTF-8 byte", method: "GET", path: "/app/%FF", query: "sort_key=s", code: "InvalidUtf8String"},
		{name: "truncated UTF-8", method: "GET", path: "/app/%C3", query: "sort_key=s", code: "InvalidUtf8String"},
		{name: "surrogate", method: "PUT", path: "/app/%ED%A0%80", query: "sort_key=s", code: "InvalidUtf8String"},
		{name: "overlong", method: "POST", path: "/app/%C0%AF", query: "poll_range", code: "InvalidUtf8String"},

		// §2.3 query strings
		{name: "plus is space", method: "GET", path: "/app/pk", query: "sort_key=a+b",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "a b"}},
		{name: "encoded plus", method: "GET", path: "/app/pk", query: "sort_key=a%2Bb",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "a+b"}},
		{name: "encoded reserved", method: "GET", path: "/app/pk", query: "sort_key=%26%3D%3F%23%2F",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "&=?#/"}},
		{name: "encoded UTF-8", method: "GET", path: "/app/pk", query: "sort_key=%E2%9C%93",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "✓"}},
		{name: "encoded parameter name", method: "GET", path: "/app/pk", query: "sort%5Fkey=s",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "empty token is ReadItem", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "empty timeout ignored", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=",
			want: &want{Endpoint: PollItem, Bucket: "app", Partition: "pk", SortKey: "s", CausalityToken: tok}},
		{name: "empty sort_key is missing", method: "PUT", path: "/app/pk", query: "sort_key=", code: "InvalidRequest", msg: "Missing argument"},
		{name: "missing sort_key ReadItem", method: "GET", path: "/app/pk", code: "InvalidRequest", msg: "Missing argument"},
		{name: "missing sort_key PollItem", method: "GET", path: "/app/pk", query: "causality_token=" + tok, code: "InvalidRequest", msg: "Missing argument"},
		{name: "missing sort_key InsertItem", method: "PUT", path: "/app/pk", code: "InvalidRequest", msg: "Missing argument"},
		{name: "missing sort_key DeleteItem", method: "DELETE", path: "/app/pk", code: "InvalidRequest", msg: "Missing argument"},
		{name: "parameter names are case-sensitive", method: "GET", path: "/app/pk", query: "Sort_Key=s", code: "InvalidRequest", msg: "Missing argument"},
		{name: "repeated sort_key", method: "GET", path: "/app/pk", query: "sort_key=a&sort_key=b", code: "InvalidRequest", msg: "Query parameter repeated"},
		{name: "repeated same value", method: "PUT", path: "/app/pk", query: "sort_key=a&sort_key=a", code: "InvalidRequest", msg: "Query parameter repeated"},
		{name: "repeated token", method: "GET", path: "/app/pk", query: "sort_key=a&causality_token=" + tok + "&causality_token=" + tok, code: "InvalidRequest", msg: "Query parameter repeated"},
		{name: "repeated prefix", method: "GET", path: "/app", query: "prefix=a&prefix=b", code: "InvalidRequest", msg: "Query parameter repeated"},
		{name: "repeated with one empty", method: "GET", path: "/app/pk", query: "sort_key=a&sort_key=",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "a"}},
		{name: "repeated with first empty", method: "GET", path: "/app/pk", query: "sort_key=&sort_key=b",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "b"}},
		{name: "two keywords", method: "POST", path: "/app", query: "search&delete", code: "InvalidRequest", msg: "Multiple keywords"},
		{name: "two keywords reversed", method: "POST", path: "/app", query: "delete&search", code: "InvalidRequest", msg: "Multiple keywords"},
		{name: "two keywords with key", method: "POST", path: "/app/pk", query: "poll_range&search", code: "InvalidRequest", msg: "Multiple keywords"},
		{name: "keyword twice", method: "POST", path: "/app", query: "search&search", code: "InvalidRequest", msg: "Multiple keywords"},
		{name: "unknown parameters ignored", method: "GET", path: "/app/pk", query: "foo=bar&sort_key=s&baz&x-id=GetObject",
			want: &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "presign parameters ignored", method: "GET", path: "/app/pk",
			query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60&sort_key=s&X-Amz-Signature=00",
			want:  &want{Endpoint: ReadItem, Bucket: "app", Partition: "pk", SortKey: "s"}},
		{name: "unknown bare parameter is not a keyword", method: "POST", path: "/app", query: "foo",
			want: &want{Endpoint: InsertBatch, Bucket: "app"}},
		{name: "timeout not a number", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=abc", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "timeout negative", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=-1", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "timeout fraction", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=1.5", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "timeout overflows u64", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=18446744073709551616", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "timeout max u64", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=18446744073709551615",
			want: &want{Endpoint: PollItem, Bucket: "app", Partition: "pk", SortKey: "s", CausalityToken: tok, Timeout: u64(18446744073709551615)}},
		{name: "timeout zero", method: "GET", path: "/app/pk", query: "sort_key=s&causality_token=" + tok + "&timeout=0",
			want: &want{Endpoint: PollItem, Bucket: "app", Partition: "pk", SortKey: "s", CausalityToken: tok, Timeout: u64(0)}},
		{name: "limit not a number", method: "GET", path: "/app", query: "limit=ten", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "limit negative", method: "GET", path: "/app", query: "limit=-3", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "limit with space", method: "GET", path: "/app", query: "limit=+1", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "reverse TRUE", method: "GET", path: "/app", query: "reverse=TRUE", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "reverse 1", method: "GET", path: "/app", query: "reverse=1", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "reverse yes", method: "GET", path: "/app", query: "reverse=yes", code: "InvalidRequest", msg: "Failed to parse query parameter"},
		{name: "empty reverse ignored", method: "GET", path: "/app", query: "reverse=&limit=",
			want: &want{Endpoint: ReadIndex, Bucket: "app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest(tt.method, tt.path, tt.query)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("ParseRequest(%q, %q, %q) = %v", tt.method, tt.path, tt.query, err)
				}
				if g, w := showRequest(got), showRequest(tt.want); g != w {
					t.Errorf("ParseRequest(%q, %q, %q) =\n  %s\nwant\n  %s", tt.method, tt.path, tt.query, g, w)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("ParseRequest(%q, %q, %q) = %s, %v; want a %s error", tt.method, tt.path, tt.query, showRequest(got), err, tt.code)
			}
			if ae.status != 400 || ae.code != tt.code || !strings.HasPrefix(ae.msg, tt.msg) {
				t.Errorf("ParseRequest(%q, %q, %q) error = %d %s %q, want 400 %s %q…", tt.method, tt.path, tt.query, ae.status, ae.code, ae.msg, tt.code, tt.msg)
			}
		})
	}
}

// TestRoutingBeforeAuth checks that routing errors are returned to unsigned
// requests (§2.2), with the error body of §12.
func TestRoutingBeforeAuth(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{"PATCH", "/app/pk?sort_key=a", 400, "InvalidRequest", "Unknown method"},
		{"POST", "/app/pk", 400, "InvalidRequest", "Invalid endpoint"},
		{"PUT", "/app", 400, "InvalidRequest", "Invalid endpoint"},
		{"GET", "/app?search", 400, "InvalidRequest", "Invalid endpoint"},
		{"POST", "/app?search&delete", 400, "InvalidRequest", "Multiple keywords"},
		{"GET", "/app/pk?sort_key=a&sort_key=b", 400, "InvalidRequest", "Query parameter repeated"},
		{"GET", "/app/pk", 400, "InvalidRequest", "Missing argument"},
		{"GET", "/app?limit=x", 400, "InvalidRequest", "Failed to parse query parameter"},
		{"GET", "/app/%FF?sort_key=a", 400, "InvalidUtf8String", ""},
		{"GET", "/", 400, "InvalidRequest", ""},
		// a valid route, unsigned: routing passed, authentication refuses
		{"GET", "/app/pk?sort_key=a", 403, "AccessDenied", ""},
		{"POST", "/app?search", 403, "AccessDenied", ""},
	}
	for _, tt := range tests {
		what := tt.method + " " + tt.path
		r := ts.send(ts.request(tt.method, tt.path, nil))
		e := wantError(t, what, r, tt.status, tt.code)
		wantMessage(t, what, e, tt.msg)
	}
	// HEAD: the status only, a HEAD response has no body
	r := ts.send(ts.request("HEAD", "/app/pk?sort_key=a", nil))
	if r.status != 400 {
		t.Errorf("HEAD: status %d, want 400", r.status)
	}
	r = ts.do("HEAD", "/app", nil)
	if r.status != 400 {
		t.Errorf("signed HEAD: status %d, want 400", r.status)
	}
}

// TestPathSplittingHTTP checks §2.1 end to end: which item a path
// addresses.
func TestPathSplittingHTTP(t *testing.T) {
	ts := startServer(t)
	// '/' sent literally or as %2F: the same key
	ts.put("a/b/c", "s", "x", "")
	for _, p := range []string{"/app/a/b/c?sort_key=s", "/app/a%2Fb%2Fc?sort_key=s", "//app/a%2Fb/c?sort_key=s"} {
		r := ts.do("GET", p, nil)
		if r.status != 200 || decodeValues(t, r.body) != `["x"]` {
			t.Errorf("GET %s: %d %s, want 200 [x]", p, r.status, r.body)
		}
	}
	// a leading '/' of the key must be encoded; otherwise it is stripped
	if r := ts.do("PUT", "/app/%2Flead?sort_key=s", []byte("encoded")); r.status != 204 {
		t.Fatalf("PUT %%2Flead: %d %s", r.status, r.body)
	}
	if r := ts.do("PUT", "/app//lead?sort_key=s", []byte("plain")); r.status != 204 {
		t.Fatalf("PUT //lead: %d %s", r.status, r.body)
	}
	// no normalisation of dot segments
	for _, p := range []string{"/app/../dots?sort_key=s", "/app/./dot?sort_key=s", "/app/a/../b?sort_key=s"} {
		if r := ts.do("PUT", p, []byte(p)); r.status != 204 {
			t.Fatalf("PUT %s: %d %s", p, r.status, r.body)
		}
	}
	// the plus sign is literal in paths
	if r := ts.do("PUT", "/app/x+y?sort_key=s", []byte("plus")); r.status != 204 {
		t.Fatalf("PUT x+y: %d %s", r.status, r.body)
	}
	res := ts.readBatch(`[
		{"partitionKey": "/lead"}, {"partitionKey": "lead"}, {"partitionKey": "../dots"},
		{"partitionKey": "./dot"}, {"partitionKey": "a/../b"}, {"partitionKey": "b"}, {"partitionKey": "x+y"}
	]`)
	want := []string{`["encoded"]`, `["plain"]`, `["/app/../dots?sort_key=s"]`, `["/app/./dot?sort_key=s"]`, `["/app/a/../b?sort_key=s"]`, ``, `["plus"]`}
	for i, w := range want {
		got := ""
		if len(res[i].Items) == 1 {
			got = showValues(t, res[i].Items[0].V)
		} else if len(res[i].Items) > 1 {
			got = fmt.Sprint(sortKeys(res[i].Items))
		}
		if got != w {
			t.Errorf("partition %q: %s, want %s", res[i].PartitionKey, got, w)
		}
	}
	// the bucket segment is not percent-decoded: "ap%70" is not "app"
	r := ts.do("GET", "/ap%70/a%2Fb%2Fc?sort_key=s", nil)
	wantError(t, "GET /ap%70", r, 404, "NoSuchBucket")
	// invalid UTF-8 after decoding, signed
	r = ts.do("PUT", "/app/%C3%28?sort_key=s", []byte("v"))
	wantError(t, "PUT invalid UTF-8 key", r, 400, "InvalidUtf8String")
}

// TestQueryHTTP checks §2.3 end to end.
func TestQueryHTTP(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "a b", "space", "")
	ts.put("pk", "a+b", "plus", "")
	tests := []struct {
		query string
		want  string // decoded values, or "404"
	}{
		{"sort_key=a+b", `["space"]`},
		{"sort_key=a%20b", `["space"]`},
		{"sort_key=a%2Bb", `["plus"]`},
		{"sort_key=a%2bb", `["plus"]`},
		// empty causality_token: a ReadItem, answered at once
		{"sort_key=a+b&causality_token=", `["space"]`},
		{"sort_key=a+b&causality_token=&timeout=", `["space"]`},
		// unknown parameters, bare or with values, are ignored
		{"unknown=1&sort_key=a%2Bb&other&x-id=GetItem", `["plus"]`},
		{"sort_key=ab", "404"},
	}
	for _, tt := range tests {
		r := ts.do("GET", "/app/pk?"+tt.query, nil)
		if tt.want == "404" {
			wantError(t, tt.query, r, 404, "NoSuchKey")
			continue
		}
		if r.status != 200 {
			t.Errorf("GET ?%s: %d %s, want 200", tt.query, r.status, r.body)
			continue
		}
		if got := decodeValues(t, r.body); got != tt.want {
			t.Errorf("GET ?%s = %s, want %s", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{
		"sort_key=a&sort_key=b",
		"sort_key=a+b&causality_token=" + emptyToken + "&timeout=soon",
		"sort_key=",
	} {
		r := ts.do("GET", "/app/pk?"+q, nil)
		wantError(t, q, r, 400, "InvalidRequest")
	}
	r := ts.do("GET", "/app?reverse=True", nil)
	wantError(t, "reverse=True", r, 400, "InvalidRequest")
	r = ts.do("POST", "/app?delete&search", []byte(`[]`))
	wantError(t, "two keywords", r, 400, "InvalidRequest")
}
