package k2vhttp

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Endpoint is one operation of the K2V API.
type Endpoint int

// The endpoints of k2v-api.md §2.2.
const (
	ReadItem Endpoint = iota + 1
	PollItem
	ReadIndex
	InsertItem
	DeleteItem
	InsertBatch
	ReadBatch
	DeleteBatch
	PollRange
	Options
)

var endpointNames = [...]string{
	ReadItem: "ReadItem", PollItem: "PollItem", ReadIndex: "ReadIndex", InsertItem: "InsertItem",
	DeleteItem: "DeleteItem", InsertBatch: "InsertBatch", ReadBatch: "ReadBatch",
	DeleteBatch: "DeleteBatch", PollRange: "PollRange", Options: "Options",
}

func (e Endpoint) String() string {
	if e > 0 && int(e) < len(endpointNames) {
		return endpointNames[e]
	}
	return "Unknown"
}

// readOnly reports whether the endpoint needs only read permission
// (k2v-api.md §3.5: PollRange needs write, as in the reference).
func (e Endpoint) readOnly() bool {
	return e == ReadItem || e == PollItem || e == ReadIndex || e == ReadBatch
}

// Request is a routed K2V request: the endpoint and its parameters, decoded
// from the method, the raw path and the raw query. It owns its strings.
type Request struct {
	Endpoint Endpoint
	// Bucket is the bucket segment of the path, not percent-decoded.
	Bucket string
	// Partition is the percent-decoded partition key ("" for bucket-level
	// endpoints).
	Partition      string
	SortKey        string
	CausalityToken string
	Timeout        *uint64
	Prefix         *string
	Start          *string
	End            *string
	Limit          *uint64
	Reverse        *bool
}

// query holds the recognised query parameters (k2v-api.md §2.3).
type query struct {
	keyword string
	params  [numParams]*string
}

const (
	pSortKey = iota
	pCausalityToken
	pTimeout
	pPrefix
	pStart
	pEnd
	pLimit
	pReverse
	numParams
)

var paramNames = [numParams]string{"sort_key", "causality_token", "timeout", "prefix", "start", "end", "limit", "reverse"}

func isKeyword(name string) bool { return name == "search" || name == "delete" || name == "poll_range" }

// parseQuery parses a raw query as application/x-www-form-urlencoded.
// Empty values of parameters are ignored; a repeated parameter or a second
// keyword is an error; unknown parameters are ignored.
func parseQuery(raw string) (*query, error) {
	q := &query{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name := formDecode(rawName)
		if isKeyword(name) {
			if q.keyword != "" {
				return nil, badRequest("Multiple keywords: '%s' and '%s'", q.keyword, name)
			}
			q.keyword = name
			continue
		}
		i := paramIndex(name)
		if i < 0 {
			continue
		}
		value := formDecode(rawValue)
		if value == "" {
			continue
		}
		if !utf8.ValidString(value) {
			return nil, &apiError{status: 400, code: "InvalidUtf8String", msg: "Invalid UTF-8 in query parameter " + name}
		}
		if q.params[i] != nil {
			return nil, badRequest("Query parameter repeated: '%s'", name)
		}
		q.params[i] = &value
	}
	return q, nil
}

func paramIndex(name string) int {
	for i, n := range paramNames {
		if n == name {
			return i
		}
	}
	return -1
}

// formDecode decodes '+' as a space and %XX escapes; a '%' that does not
// start a valid escape is kept as it is (as browsers and the reference do).
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	return percentDecode(s, true)
}

func percentDecode(s string, plusIsSpace bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+' && plusIsSpace:
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// splitPath splits a raw path into the bucket segment (not decoded) and
// the raw partition key (k2v-api.md §2.1).
func splitPath(rawPath string) (bucket, rawKey string) {
	p := strings.TrimLeft(rawPath, "/")
	bucket, rawKey, _ = strings.Cut(p, "/")
	return bucket, strings.TrimLeft(rawKey, "/")
}

// ParseRequest routes a request from its method, raw path (still
// percent-encoded) and raw query (without '?'). It is pure and total: any
// input yields a Request or an *apiError, never a panic. Errors here come
// before authentication, as in the reference.
func ParseRequest(method, rawPath, rawQuery string) (*Request, error) {
	bucket, rawKey := splitPath(rawPath)
	if bucket == "" {
		return nil, badRequest("Missing bucket name")
	}
	if method == "OPTIONS" {
		return &Request{Endpoint: Options, Bucket: bucket}, nil
	}
	pk := percentDecode(rawKey, false)
	if !utf8.ValidString(pk) {
		return nil, &apiError{status: 400, code: "InvalidUtf8String", msg: "Invalid UTF-8 in partition key"}
	}
	q, err := parseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	r := &Request{Bucket: bucket, Partition: pk}
	hasKey := pk != ""
	kw := q.keyword
	switch method {
	case "GET":
		switch {
		case hasKey && kw == "" && q.params[pCausalityToken] != nil:
			r.Endpoint = PollItem
		case hasKey && kw == "":
			r.Endpoint = ReadItem
		case !hasKey && kw == "":
			r.Endpoint = ReadIndex
		}
	case "SEARCH":
		switch {
		case hasKey && kw == "poll_range":
			r.Endpoint = PollRange
		case !hasKey && kw == "":
			r.Endpoint = ReadBatch
		}
	case "POST":
		switch {
		case hasKey && kw == "poll_range":
			r.Endpoint = PollRange
		case !hasKey && kw == "":
			r.Endpoint = InsertBatch
		case !hasKey && kw == "delete":
			r.Endpoint = DeleteBatch
		case !hasKey && kw == "search":
			r.Endpoint = ReadBatch
		}
	case "PUT":
		if hasKey && kw == "" {
			r.Endpoint = InsertItem
		}
	case "DELETE":
		if hasKey && kw == "" {
			r.Endpoint = DeleteItem
		}
	default:
		return nil, badRequest("Unknown method")
	}
	if r.Endpoint == 0 {
		return nil, badRequest("Invalid endpoint: `%s`", kw)
	}
	switch r.Endpoint {
	case ReadItem, PollItem, InsertItem, DeleteItem:
		sk := q.params[pSortKey]
		if sk == nil {
			return nil, badRequest("Missing argument `sort_key` for endpoint")
		}
		r.SortKey = *sk
	}
	switch r.Endpoint {
	case PollItem:
		r.CausalityToken = *q.params[pCausalityToken]
		if r.Timeout, err = parseUint(q.params[pTimeout]); err != nil {
			return nil, err
		}
	case ReadIndex:
		r.Prefix, r.Start, r.End = q.params[pPrefix], q.params[pStart], q.params[pEnd]
		if r.Limit, err = parseUint(q.params[pLimit]); err != nil {
			return nil, err
		}
		if v := q.params[pReverse]; v != nil {
			if *v != "true" && *v != "false" {
				return nil, badRequest("Failed to parse query parameter")
			}
			b := *v == "true"
			r.Reverse = &b
		}
	}
	return r, nil
}

func parseUint(v *string) (*uint64, error) {
	if v == nil {
		return nil, nil
	}
	n, err := strconv.ParseUint(*v, 10, 64)
	if err != nil {
		return nil, badRequest("Failed to parse query parameter")
	}
	return &n, nil
}
