package sigv4

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sdkCase is a request signed by the AWS SDK signer in the tests below.
type sdkCase struct {
	name     string
	method   string
	target   string // path and query, as on the request line
	headers  [][2]string
	body     string
	unsigned bool // X-Amz-Content-Sha256: UNSIGNED-PAYLOAD
}

var sdkCases = []sdkCase{
	{name: "get", method: "GET", target: "/bucket/pk?sort_key=sk"},
	{name: "get-root", method: "GET", target: "/"},
	{name: "read-index", method: "GET", target: "/bucket?prefix=&start=a&limit=10&reverse=false"},
	{name: "put", method: "PUT", target: "/bucket/pk?sort_key=a+b%2Bc",
		headers: [][2]string{{"Content-Type", "application/octet-stream"}, {"X-Garage-Causality-Token", "AAAAAAAAAAA"}},
		body:    "hello, world"},
	{name: "put-unsigned", method: "PUT", target: "/bucket/pk?sort_key=x", body: "unsigned body", unsigned: true},
	{name: "post-search", method: "POST", target: "/bucket?search",
		headers: [][2]string{{"Content-Type", "application/json"}},
		body:    `[{"partitionKey":"pk"}]`},
	{name: "post-delete", method: "POST", target: "/bucket?delete", body: `[]`},
	{name: "post-poll-range", method: "POST", target: "/bucket/pk?poll_range", body: `{"timeout":10}`},
	{name: "delete", method: "DELETE", target: "/bucket/pk?sort_key=%E2%82%AC&causality_token=S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"},
	{name: "path-space", method: "GET", target: "/bucket/a%20b?sort_key=c%20d"},
	{name: "path-slash-encoded", method: "GET", target: "/bucket/a%2Fb%2Fc?sort_key=x%2Fy"},
	{name: "path-unicode", method: "GET", target: "/bucket/%C3%A9t%C3%A9/%E2%82%AC?sort_key=%C3%A9"},
	{name: "path-reserved", method: "GET", target: "/bucket/a+b!$&'()*,;=:@/./../x"},
	{name: "query-plus-empty-bare", method: "GET", target: "/bucket/pk?sort_key=a+b&start=&search&end=z"},
	{name: "query-repeated", method: "GET", target: "/bucket?a=2&a=1&a=10"},
	{name: "query-prefix-names", method: "GET", target: "/bucket?a=1&a-b=2&a.b=3&a1=4&a%20c=5"},
	{name: "query-special", method: "GET", target: "/bucket?k=%21%2A%27%28%29~-_.%7E%25&%C3%A9=%3D%26"},
	{name: "repeated-headers", method: "PUT", target: "/bucket/pk?sort_key=r",
		headers: [][2]string{{"X-Amz-Meta-A", "1"}, {"X-Amz-Meta-A", "two"}, {"Content-Type", "text/plain"}, {"X-Amz-Meta-B", "x"}},
		body:    "v"},
	{name: "header-trim", method: "PUT", target: "/bucket/pk?sort_key=t",
		headers: [][2]string{{"X-Amz-Meta-Pad", "\t padded value \t"}},
		body:    "v"},
}

// newSDKRequest builds, signs with the SDK and serialises c for service.
// It returns the wire request and the SDK's canonical request.
func newSDKRequest(t testing.TB, c sdkCase, service, region string, at time.Time) (*Request, string) {
	t.Helper()
	var body *strings.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(c.method, "http://127.0.0.1:3904"+c.target, body)
	} else {
		req, err = http.NewRequest(c.method, "http://127.0.0.1:3904"+c.target, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.headers {
		req.Header.Add(h[0], h[1])
	}
	hash := hexSHA256([]byte(c.body))
	if c.unsigned {
		hash = unsignedPayload
	}
	canonical := sdkSign(t, req, service, region, hash, at)
	return wireRequest(t, req), canonical
}

func TestVerifySDK(t *testing.T) {
	for _, service := range []string{"k2v", "s3"} {
		for _, c := range sdkCases {
			t.Run(service+"/"+c.name, func(t *testing.T) {
				r, sdkCanon := newSDKRequest(t, c, service, testRegion, t0)
				v := newTestVerifier(service, t0)
				got, err := canonicalOf(v, r)
				if err != nil {
					t.Fatalf("canonical request: %v", err)
				}
				if got != sdkCanon {
					t.Errorf("canonical request differs from the SDK's\ngot:\n%s\nSDK:\n%s", got, sdkCanon)
				}
				a, err := v.Verify(r, testLookup)
				if err != nil {
					t.Fatalf("Verify(%+v) = %v", r, err)
				}
				wantMode := PayloadSHA256
				if c.unsigned {
					wantMode = PayloadUnsigned
				}
				if a.AccessKeyID != testAKID || a.Mode != wantMode || a.Presigned || !a.Date.Equal(t0) {
					t.Errorf("Auth = {%s %s %v %s}, want {%s %s false %s}",
						a.AccessKeyID, a.Mode, a.Presigned, a.Date, testAKID, wantMode, t0)
				}
				if err := a.CheckPayload([]byte(c.body)); err != nil {
					t.Errorf("CheckPayload(body) = %v", err)
				}
				err = a.CheckPayload([]byte(c.body + "x"))
				if c.unsigned && err != nil || !c.unsigned && !errors.Is(err, ErrPayloadMismatch) {
					t.Errorf("CheckPayload(tampered body) = %v", err)
				}
			})
		}
	}
}

func TestVerifySDKTampered(t *testing.T) {
	type tamper struct {
		name   string
		edit   func(r *Request) *Request
		lookup Lookup
		want   error
	}
	tampers := []tamper{
		{"method", func(r *Request) *Request { r.Method = "PATCH"; return r }, nil, ErrSignatureMismatch},
		{"method-case", func(r *Request) *Request { r.Method = strings.ToLower(r.Method); return r }, nil, ErrSignatureMismatch},
		{"path", func(r *Request) *Request { r.RawPath += "x"; return r }, nil, ErrSignatureMismatch},
		{"path-encoding", func(r *Request) *Request {
			// Same decoded path, other bytes: one letter sent %-encoded.
			if i := strings.IndexAny(r.RawPath, "abcdefghijklmnopqrstuvwxyz"); i >= 0 {
				r.RawPath = r.RawPath[:i] + "%" + strings.ToUpper(hex.EncodeToString([]byte{r.RawPath[i]})) + r.RawPath[i+1:]
			} else {
				r.RawPath = "//"
			}
			return r
		}, nil, ErrSignatureMismatch},
		{"query-added", func(r *Request) *Request { r.RawQuery = strings.TrimPrefix(r.RawQuery+"&x=1", "&"); return r }, nil, ErrSignatureMismatch},
		{"query-empty-added", func(r *Request) *Request { r.RawQuery = strings.TrimPrefix(r.RawQuery+"&x", "&"); return r }, nil, ErrSignatureMismatch},
		{"host", func(r *Request) *Request { return r.setHeader("Host", "127.0.0.1:3905") }, nil, ErrSignatureMismatch},
		{"date-1s", func(r *Request) *Request { return r.setHeader("X-Amz-Date", t0.Add(time.Second).Format(amzDateLayout)) }, nil, ErrSignatureMismatch},
		{"date-1h", func(r *Request) *Request { return r.setHeader("X-Amz-Date", t0.Add(time.Hour).Format(amzDateLayout)) }, nil, ErrRequestTimeSkewed},
		{"date-next-day", func(r *Request) *Request {
			return r.setHeader("X-Amz-Date", t0.Add(24*time.Hour).Format(amzDateLayout))
		}, nil, ErrScopeMismatch},
		{"date-format", func(r *Request) *Request { return r.setHeader("X-Amz-Date", t0.Format(time.RFC3339)) }, nil, ErrMalformed},
		{"body-hash", func(r *Request) *Request { return r.setHeader("X-Amz-Content-Sha256", hexSHA256([]byte("other"))) }, nil, ErrSignatureMismatch},
		{"body-hash-upper", func(r *Request) *Request {
			return r.setHeader("X-Amz-Content-Sha256", strings.ToUpper(hexSHA256([]byte("other"))))
		}, nil, ErrMalformed},
		{"signature", func(r *Request) *Request {
			v, _ := header(r.Headers, "authorization")
			last := v[len(v)-1]
			if last == '0' {
				last = '1'
			} else {
				last = '0'
			}
			return r.setHeader("Authorization", v[:len(v)-1]+string(last))
		}, nil, ErrSignatureMismatch},
		{"secret", func(r *Request) *Request { return r }, lookupOf(testAKID, testSecret+"x"), ErrSignatureMismatch},
		{"unknown-key", func(r *Request) *Request { return r }, lookupOf("GKother", testSecret), ErrUnknownKey},
		{"no-authorization", func(r *Request) *Request { return r.delHeader("Authorization") }, nil, ErrAnonymous},
		{"two-authorizations", func(r *Request) *Request {
			v, _ := header(r.Headers, "authorization")
			r.Headers = append(r.Headers, Header{"authorization", v})
			return r
		}, nil, ErrMalformed},
		{"unsigned-x-amz-header", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"X-Amz-Meta-Evil", "1"})
			return r
		}, nil, ErrMalformed},
		{"repeated-signed-header", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"host", "evil"})
			return r
		}, nil, ErrSignatureMismatch},
		{"unsigned-other-header", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"X-Forwarded-For", "10.0.0.1"})
			return r
		}, nil, nil},
		{"drop-host", func(r *Request) *Request { return r.delHeader("Host") }, nil, ErrMalformed},
		{"drop-date", func(r *Request) *Request { return r.delHeader("X-Amz-Date") }, nil, ErrMalformed},
		{"drop-content-sha256", func(r *Request) *Request { return r.delHeader("X-Amz-Content-Sha256") }, nil, ErrMalformed},
		{"presigned-too", func(r *Request) *Request {
			r.RawQuery = strings.TrimPrefix(r.RawQuery+"&X-Amz-Algorithm=AWS4-HMAC-SHA256", "&")
			return r
		}, nil, ErrMalformed},
	}
	for _, service := range []string{"k2v", "s3"} {
		for _, c := range sdkCases {
			r, _ := newSDKRequest(t, c, service, testRegion, t0)
			v := newTestVerifier(service, t0)
			for _, tc := range tampers {
				lookup := tc.lookup
				if lookup == nil {
					lookup = testLookup
				}
				_, err := v.Verify(tc.edit(r.clone()), lookup)
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("%s/%s/%s: Verify = %v (%s), want %v", service, c.name, tc.name, err, errName(err), tc.want)
				}
			}
		}
	}
}

func TestVerifySDKScope(t *testing.T) {
	c := sdkCases[0]
	tests := []struct {
		name            string
		signService     string
		signRegion      string
		verifierService string
		want            error
	}{
		{"k2v", "k2v", testRegion, "k2v", nil},
		{"alt-region-us-east-1", "k2v", "us-east-1", "k2v", nil},
		{"alt-region-auto", "k2v", "auto", "k2v", nil},
		{"other-region", "k2v", "eu-west-1", "k2v", ErrScopeMismatch},
		{"s3-signed-for-k2v", "s3", testRegion, "k2v", ErrScopeMismatch},
		{"k2v-signed-for-s3", "k2v", testRegion, "s3", ErrScopeMismatch},
	}
	for _, tc := range tests {
		r, _ := newSDKRequest(t, c, tc.signService, tc.signRegion, t0)
		_, err := newTestVerifier(tc.verifierService, t0).Verify(r, testLookup)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestVerifyClockSkew(t *testing.T) {
	r, _ := newSDKRequest(t, sdkCases[0], "k2v", testRegion, t0)
	tests := []struct {
		now     time.Time
		maxSkew time.Duration
		want    error
	}{
		{t0, 0, nil},
		{t0.Add(DefaultMaxSkew), 0, nil},
		{t0.Add(-DefaultMaxSkew), 0, nil},
		{t0.Add(DefaultMaxSkew + time.Second), 0, ErrRequestTimeSkewed},
		{t0.Add(-DefaultMaxSkew - time.Second), 0, ErrRequestTimeSkewed},
		{t0.Add(time.Minute), time.Minute, nil},
		{t0.Add(time.Minute + time.Second), time.Minute, ErrRequestTimeSkewed},
		{t0.Add(23 * time.Hour), 24 * time.Hour, nil},
		{t0.Add(-23 * time.Hour), 24 * time.Hour, nil},
		{t0.Add(25 * time.Hour), 24 * time.Hour, ErrRequestTimeSkewed},
	}
	for _, tc := range tests {
		v := New(Config{Service: "k2v", Region: testRegion, MaxSkew: tc.maxSkew, Now: fixedNow(tc.now)})
		_, err := v.Verify(r, testLookup)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("now = t0%+v, MaxSkew %v: Verify = %v, want %v", tc.now.Sub(t0), tc.maxSkew, err, tc.want)
		}
	}
}

// TestVerifySDKCollapsedSpaces: AWS signers collapse runs of spaces inside
// header values, the reference server does not; both spellings verify (the
// uncollapsed one is covered by the canonical-request golden tests), and a
// value changed beyond whitespace still fails.
func TestVerifySDKCollapsedSpaces(t *testing.T) {
	c := sdkCase{name: "inner-spaces", method: "PUT", target: "/bucket/pk?sort_key=s",
		headers: [][2]string{{"X-Amz-Meta-Spaces", "a  b"}}, body: "v"}
	r, _ := newSDKRequest(t, c, "k2v", testRegion, t0)
	if _, err := newTestVerifier("k2v", t0).Verify(r, testLookup); err != nil {
		t.Errorf("Verify of an SDK-signed request with inner spaces = %v, want success", err)
	}
	for i := range r.Headers {
		if strings.EqualFold(r.Headers[i].Name, "X-Amz-Meta-Spaces") {
			r.Headers[i].Value = "a  c"
		}
	}
	if _, err := newTestVerifier("k2v", t0).Verify(r, testLookup); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("Verify after changing the value = %v, want ErrSignatureMismatch", err)
	}
}

// TestVerifyConcurrent shares one Verifier (and its key cache) between
// goroutines, with enough distinct secrets to reset the cache; run it with
// -race.
func TestVerifyConcurrent(t *testing.T) {
	r, _ := newSDKRequest(t, sdkCases[0], "k2v", testRegion, t0)
	v := newTestVerifier("k2v", t0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range keyCacheSize / 2 {
				if _, err := v.Verify(r, testLookup); err != nil {
					t.Errorf("Verify = %v", err)
					return
				}
				other := fmt.Sprintf("secret-%d-%d", g, i)
				if _, err := v.Verify(r, lookupOf(testAKID, other)); !errors.Is(err, ErrSignatureMismatch) {
					t.Errorf("Verify with another secret = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
