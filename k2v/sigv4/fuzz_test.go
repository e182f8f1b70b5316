package sigv4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add(testAuthz("host;x-amz-content-sha256;x-amz-date"))
	f.Add("AWS4-HMAC-SHA256 Signature=00, SignedHeaders=X-Amz-Date;Host, Credential=a/b/c/d/e")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f,,SignedHeaders=;;,Signature=")
	f.Add("AWS AKID:sig")
	f.Fuzz(func(t *testing.T, s string) {
		var p params
		if err := parseAuthorization(s, &p); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseAuthorization(%q) = %v, not ErrMalformed", s, err)
			}
			return
		}
		// What parsed renders back to a header that parses the same.
		again := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%x",
			p.accessKey, p.scope, p.signedHeaders, p.signature)
		var q params
		if err := parseAuthorization(again, &q); err != nil || q != p {
			t.Fatalf("parseAuthorization(%q) = %+v, but its rendering %q gives %+v, %v", s, p, again, q, err)
		}
		sh, err := canonicalSignedHeaders(p.signedHeaders)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("canonicalSignedHeaders(%q) = %v", p.signedHeaders, err)
			}
			return
		}
		if sh2, err := canonicalSignedHeaders(sh); err != nil || sh2 != sh {
			t.Fatalf("canonicalSignedHeaders not idempotent: %q → %q → %q, %v", p.signedHeaders, sh, sh2, err)
		}
		if strings.ToLower(sh) != sh || !slices.IsSorted(strings.Split(sh, ";")) {
			t.Fatalf("canonicalSignedHeaders(%q) = %q: not lowercase and sorted", p.signedHeaders, sh)
		}
	})
}

// FuzzParsePresigned covers the query parsers: presigned parameters,
// canonical query, PresignedHeaders. The canonical query is checked against
// one computed from net/url's parser, and for idempotence.
func FuzzParsePresigned(f *testing.F) {
	f.Add(goldenCases[len(goldenCases)-1].r.RawQuery)
	f.Add("sort_key=a+b%2Bc&search&prefix=&a-b=1&a=2&a=1")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604800&X-Amz-Expires=1&%")
	f.Add("X%2DAmz-Algorithm=x&=&&&%41=%zz;a=b")
	f.Fuzz(func(t *testing.T, q string) {
		var p params
		if err := parsePresigned(q, &p); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("parsePresigned(%q) = %v", q, err)
		}
		queryHasName(q, qAlgorithm)
		if _, err := PresignedHeaders(q); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("PresignedHeaders(%q) = %v", q, err)
		}

		got, err := appendCanonicalQuery(nil, q, false, new(scratch))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("appendCanonicalQuery(%q) = %v", q, err)
			}
			return
		}
		for _, c := range got {
			if !unreserved[c] && !strings.ContainsRune("%=&", rune(c)) {
				t.Fatalf("canonical query %q of %q has byte %q", got, q, c)
			}
		}
		again, err := appendCanonicalQuery(nil, string(got), false, new(scratch))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("canonical query not idempotent: %q → %q → %q, %v", q, got, again, err)
		}
		if vals, err := url.ParseQuery(q); err == nil {
			if want := refCanonicalQuery(vals); string(got) != want {
				t.Fatalf("canonical query of %q = %q, net/url gives %q", q, got, want)
			}
		}
	})
}

// refCanonicalQuery is the canonical query computed the slow way from
// net/url's decoding.
func refCanonicalQuery(vals url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, kv{enc(k), enc(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var parts []string
	for _, p := range pairs {
		parts = append(parts, p.k+"="+p.v)
	}
	return strings.Join(parts, "&")
}

func FuzzChunkedReader(f *testing.F) {
	for _, mode := range streamingModes {
		_, s := testAuth(mode, testSeed)
		f.Add(uint8(mode), buildChunked(mode, s, testChunks(), testTrailers(mode)))
		_, s = testAuth(mode, testSeed)
		f.Add(uint8(mode), buildChunked(mode, s, nil, nil))
	}
	f.Add(uint8(PayloadStreamingUnsignedTrailer), []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"))
	f.Add(uint8(PayloadStreamingSigned), []byte("ffffff;chunk-signature=00\r\n"))
	f.Fuzz(func(t *testing.T, modeSel uint8, body []byte) {
		mode := streamingModes[int(modeSel)%len(streamingModes)]
		a, _ := testAuth(mode, testSeed)
		c := a.NewChunkedReader(bytes.NewReader(body))
		got, err := io.ReadAll(c)
		if len(got) > len(body) {
			t.Fatalf("decoded %d bytes out of %d", len(got), len(body))
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("read error %v wraps no sentinel", err)
			}
			if c.Trailers() != nil {
				t.Fatalf("Trailers after error")
			}
			return
		}
		if mode == PayloadStreamingSigned && len(c.Trailers()) != 0 {
			t.Fatalf("trailers %v in a body without trailer", c.Trailers())
		}
	})
}

// FuzzVerify runs whole requests through Verify, half of them presigned.
func FuzzVerify(f *testing.F) {
	for _, tc := range goldenCases {
		authz, _ := header(tc.r.Headers, "authorization")
		date, _ := header(tc.r.Headers, "x-amz-date")
		hash, _ := header(tc.r.Headers, "x-amz-content-sha256")
		f.Add(tc.r.Method, tc.r.RawPath, tc.r.RawQuery, authz, date, hash, "x-amz-meta-a", " v ")
	}
	v := newTestVerifier("k2v", t0)
	f.Fuzz(func(t *testing.T, method, path, query, authz, date, hash, hname, hvalue string) {
		r := &Request{Method: method, RawPath: path, RawQuery: query, Headers: []Header{
			{"Host", "localhost"}, {"X-Amz-Date", date}, {"X-Amz-Content-Sha256", hash}, {hname, hvalue},
		}}
		if authz != "" {
			r.Headers = append(r.Headers, Header{"Authorization", authz})
		}
		a, err := v.Verify(r, testLookup)
		if err == nil {
			// Only a real signature could get here.
			t.Fatalf("Verify accepted %+v: %+v", r, a)
		}
	})
}
