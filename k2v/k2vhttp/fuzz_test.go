package k2vhttp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/grangeio/grange/k2v"
)

// FuzzParseRequest: ParseRequest never panics; its errors are 400s; what
// it routes satisfies the invariants of §2.
func FuzzParseRequest(f *testing.F) {
	const tok = "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"
	for _, s := range [][3]string{
		// the examples of k2v-api.md
		{"GET", "/app/mailboxes", "sort_key=INBOX"},
		{"GET", "/app/mailboxes", "sort_key=INBOX&causality_token=" + tok + "&timeout=300"},
		{"PUT", "/app/mailboxes", "sort_key=INBOX"},
		{"DELETE", "/app/mailboxes", "sort_key=INBOX"},
		{"GET", "/app", "prefix=mail&start=mailbox%3AINBOX&end=z&limit=10&reverse=true"},
		{"POST", "/app", ""},
		{"POST", "/app", "search"},
		{"SEARCH", "/app", ""},
		{"POST", "/app", "delete"},
		{"POST", "/app/mailbox:INBOX", "poll_range"},
		{"SEARCH", "/app/mailbox%3AINBOX", "poll_range"},
		{"OPTIONS", "/app/pk", "anything"},
		{"GET", "/b/a/b/c", "sort_key=s"},
		{"GET", "/b/a%2Fb%2Fc", "sort_key=s"},
		{"GET", "/b/%2Fstarts-with-slash", "sort_key=a+b%2B"},
		{"GET", "/b/../x", "sort_key=."},
		// errors
		{"HEAD", "/app/pk", "sort_key=s"},
		{"PATCH", "/app", ""},
		{"POST", "/app/pk", ""},
		{"GET", "/app", "search&delete"},
		{"GET", "/app/pk", "sort_key=a&sort_key=b"},
		{"GET", "/app/%FF", "sort_key=a"},
		{"GET", "/app/pk", "sort_key=%FF"},
		{"GET", "/", ""},
		{"GET", "/app", "limit=-1&reverse=yes"},
		{"GET", "/app/pk", "sort_key=s&causality_token=x&timeout=99999999999999999999"},
		{"GET", "/app/p%", "sort_key=%&%=%zz"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, path, query string) {
		r, err := ParseRequest(method, path, query)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || r != nil {
				t.Fatalf("ParseRequest(%q, %q, %q) = %v, %v; want nil and an *apiError", method, path, query, r, err)
			}
			if ae.status != 400 || (ae.code != "InvalidRequest" && ae.code != "InvalidUtf8String") {
				t.Fatalf("ParseRequest(%q, %q, %q): error %d %s, want 400 InvalidRequest or InvalidUtf8String", method, path, query, ae.status, ae.code)
			}
			return
		}
		// deterministic
		r2, err2 := ParseRequest(method, path, query)
		if err2 != nil || showRequest(r) != showRequest(r2) {
			t.Fatalf("ParseRequest(%q, %q, %q) not deterministic: %s / %s, %v", method, path, query, showRequest(r), showRequest(r2), err2)
		}
		trimmed := strings.TrimLeft(path, "/")
		if r.Bucket == "" || strings.Contains(r.Bucket, "/") || !strings.HasPrefix(trimmed, r.Bucket) {
			t.Fatalf("ParseRequest(%q, …): bucket %q, want the first non-empty segment", path, r.Bucket)
		}
		if r.Endpoint == Options {
			if method != "OPTIONS" {
				t.Fatalf("ParseRequest(%q, …) = Options", method)
			}
			return
		}
		if !utf8.ValidString(r.Partition) || !utf8.ValidString(r.SortKey) {
			t.Fatalf("ParseRequest(%q, %q, %q): invalid UTF-8 in %q / %q", method, path, query, r.Partition, r.SortKey)
		}
		// the partition key is the percent-decoded rest of the path, leading
		// slashes removed (cross-checked with net/url when it can decode)
		rest := strings.TrimLeft(strings.TrimPrefix(trimmed, r.Bucket), "/")
		if dec, err := url.PathUnescape(rest); err == nil && dec != r.Partition {
			t.Fatalf("ParseRequest(…, %q, …): partition %q, want %q", path, r.Partition, dec)
		}
		methods := map[Endpoint][]string{
			ReadItem: {"GET"}, PollItem: {"GET"}, ReadIndex: {"GET"}, InsertItem: {"PUT"}, DeleteItem: {"DELETE"},
			InsertBatch: {"POST"}, ReadBatch: {"POST", "SEARCH"}, DeleteBatch: {"POST"}, PollRange: {"POST", "SEARCH"},
		}
		ms, ok := methods[r.Endpoint]
		if !ok || !contains(ms, method) {
			t.Fatalf("ParseRequest(%q, %q, %q) = %v", method, path, query, r.Endpoint)
		}
		switch r.Endpoint {
		case ReadItem, PollItem, InsertItem, DeleteItem:
			if r.Partition == "" || r.SortKey == "" {
				t.Fatalf("%v without partition or sort key: %s", r.Endpoint, showRequest(r))
			}
		case PollRange:
			if r.Partition == "" {
				t.Fatalf("PollRange without partition key")
			}
		default:
			if r.Partition != "" {
				t.Fatalf("%v with partition key %q", r.Endpoint, r.Partition)
			}
		}
		if (r.Endpoint == PollItem) != (r.CausalityToken != "") {
			t.Fatalf("%v with causality token %q", r.Endpoint, r.CausalityToken)
		}
		if r.Endpoint != PollItem && r.Timeout != nil {
			t.Fatalf("%v with a timeout", r.Endpoint)
		}
		if r.Endpoint != ReadIndex && (r.Prefix != nil || r.Start != nil || r.End != nil || r.Limit != nil || r.Reverse != nil) {
			t.Fatalf("%v with range parameters: %s", r.Endpoint, showRequest(r))
		}
		for _, p := range []*string{r.Prefix, r.Start, r.End} {
			if p != nil && *p == "" {
				t.Fatalf("empty range parameter kept: %s", showRequest(r))
			}
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkBodyError: errors of the body parsers are 400 InvalidRequest.
func checkBodyError(t *testing.T, what string, body []byte, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != 400 || ae.code != "InvalidRequest" {
		t.Fatalf("%s(%q): error %v, want a 400 InvalidRequest", what, body, err)
	}
}

// FuzzBatchBodies feeds arbitrary bytes to the body parsers of
// InsertBatch, ReadBatch, DeleteBatch and PollRange: no panic, errors are
// 400s, and what they accept satisfies the rules of §8 and §9.
func FuzzBatchBodies(f *testing.F) {
	for _, s := range []string{
		// the examples of k2v-api.md §8 and §9
		`[
  { "pk": "mailbox:INBOX", "sk": "001892831", "ct": "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", "v": "aGVsbG8=" },
  { "pk": "mailbox:INBOX", "sk": "001892912", "ct": null, "v": "d29ybGQ=" },
  { "pk": "mailbox:INBOX", "sk": "001892932", "ct": "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ", "v": null }
]`,
		`[{"partitionKey":"mailbox:INBOX","prefix":null,"start":"001892831","end":null,"limit":3,"reverse":false,"singleItem":false,"conflictsOnly":false,"tombstones":false}]`,
		`[{ "partitionKey": "mailbox:OldMailbox", "prefix": null, "start": null, "end": null, "singleItem": false },
  { "partitionKey": "mailbox:INBOX", "prefix": null, "start": "0018928321", "end": null, "singleItem": true }]`,
		`{"prefix":"a","start":"b","end":"c","timeout":300,"seenMarker":"KLUv/QBY"}`,
		`{}`, `[]`, ``, `null`, `[null]`, `[{}]`, `{"timeout":-1}`, `[{"partitionKey":"p","singleItem":true}]`,
		`[{"pk":"p","sk":"s","v":"aGVsbG8"}]`, `[{"PK":"p"}]`, "[{\"pk\":\"\xff\"}]",
		`[{"partitionKey":"p","limit":1e3,"reverse":null}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// InsertBatch: the same checks as the handler, in its order
		if objs, err := decodeObjects(body); err != nil {
			checkBodyError(t, "decodeObjects", body, err)
		} else {
			if !json.Valid(body) {
				t.Fatalf("decodeObjects accepted invalid JSON %q", body)
			}
			for _, o := range objs {
				pk, err1 := o.str("pk", true)
				sk, err2 := o.str("sk", true)
				ct, err3 := o.str("ct", false)
				v, err4 := o.str("v", false)
				for _, err := range []error{err1, err2, err3, err4} {
					if err != nil {
						checkBodyError(t, "str", body, err)
					}
				}
				if err1 == nil && (pk == nil || !utf8.ValidString(*pk)) || err2 == nil && (sk == nil || !utf8.ValidString(*sk)) {
					t.Fatalf("mandatory pk/sk accepted as %v/%v in %q", pk, sk, body)
				}
				if err3 == nil && ct != nil {
					k2v.ParseToken(*ct)
				}
				if err4 == nil && v != nil {
					base64.StdEncoding.Strict().DecodeString(*v)
				}
			}
		}
		// ReadBatch and DeleteBatch
		for _, forDelete := range []bool{false, true} {
			searches, err := parseSearches(body, forDelete)
			if err != nil {
				checkBodyError(t, "parseSearches", body, err)
				continue
			}
			for _, s := range searches {
				if !utf8.ValidString(s.PartitionKey) || len(s.PartitionKey) > k2v.MaxKeyBytes {
					t.Fatalf("partition key %q accepted", s.PartitionKey)
				}
				if s.SingleItem && (s.Start == nil || s.Prefix != nil || s.End != nil) {
					t.Fatalf("singleItem search accepted: %+v", s)
				}
				if s.SingleItem && !forDelete && (s.Limit != nil || s.Reverse) {
					t.Fatalf("singleItem search with limit/reverse accepted: %+v", s)
				}
				if forDelete && (s.Limit != nil || s.Reverse || s.ConflictsOnly || s.Tombstones) {
					t.Fatalf("DeleteBatch search kept ignored fields: %+v", s)
				}
				if _, err := json.Marshal(readBatchResult{search: *s, Items: []batchItem{}}); err != nil {
					t.Fatalf("result of %+v does not marshal: %v", s, err)
				}
			}
		}
		// PollRange
		o, err := decodeObject(body)
		if err != nil {
			checkBodyError(t, "decodeObject", body, err)
			return
		}
		for _, name := range []string{"prefix", "start", "end", "seenMarker"} {
			s, err := o.str(name, false)
			if err != nil {
				checkBodyError(t, "str", body, err)
				continue
			}
			if name == "seenMarker" && s != nil {
				if m, err := k2v.ParseSeenMarker(*s); err == nil {
					m.Encode()
				}
			}
		}
		if _, err := o.uint("timeout"); err != nil {
			checkBodyError(t, "uint", body, err)
		}
	})
}
