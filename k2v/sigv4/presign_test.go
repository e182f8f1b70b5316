package sigv4

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

const testOrigin = "http://127.0.0.1:3904"

// sdkPresign presigns method+target (which may carry a query) with the SDK,
// valid for expires, with the extra headers, and returns the request a
// client of the URL sends and the SDK's canonical request.
func sdkPresign(t testing.TB, method, target, service string, expires time.Duration, headers [][2]string) (*Request, string) {
	t.Helper()
	req, err := http.NewRequest(method, testOrigin+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	var canonical string
	signed, signedHeaders, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		req, unsignedPayload, service, testRegion, t0,
		func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = service == "s3"
			o.LogSigning = true
			o.Logger = logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
				canonical = sdkCanonical(fmt.Sprintf(format, v...))
			})
		})
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(signed, testOrigin)
	if !ok {
		t.Fatalf("presigned URL %q", signed)
	}
	r := &Request{Method: method}
	r.RawPath, r.RawQuery, _ = strings.Cut(rest, "?")
	for name, values := range signedHeaders {
		for _, v := range values {
			r.Headers = append(r.Headers, Header{Name: name, Value: v})
		}
	}
	r.Headers = append(r.Headers, Header{"User-Agent", "curl/8"})
	return r, canonical
}

func TestVerifyPresignedSDK(t *testing.T) {
	targets := []string{
		"/bucket/pk?sort_key=sk",
		"/bucket/a%2Fb%20c/%C3%A9?sort_key=a+b&search",
		"/",
	}
	for _, service := range []string{"k2v", "s3"} {
		for _, target := range targets {
			r, sdkCanon := sdkPresign(t, "GET", target, service, 15*time.Minute, nil)
			v := newTestVerifier(service, t0)
			got, err := canonicalOf(v, r)
			if err != nil {
				t.Fatalf("%s %s: canonical request: %v", service, target, err)
			}
			if got != sdkCanon {
				t.Errorf("%s %s: canonical request differs from the SDK's\ngot:\n%s\nSDK:\n%s", service, target, got, sdkCanon)
			}
			a, err := v.Verify(r, testLookup)
			if err != nil {
				t.Fatalf("%s %s: Verify = %v", service, target, err)
			}
			if a.AccessKeyID != testAKID || a.Mode != PayloadUnsigned || !a.Presigned || !a.Date.Equal(t0) {
				t.Errorf("Auth = {%s %s %v %s}", a.AccessKeyID, a.Mode, a.Presigned, a.Date)
			}
			if err := a.CheckPayload([]byte("anything")); err != nil {
				t.Errorf("CheckPayload = %v, want nil (unsigned)", err)
			}
		}
	}
}

func TestVerifyPresignedTime(t *testing.T) {
	const expires = 900 * time.Second
	r, _ := sdkPresign(t, "GET", "/bucket/pk?sort_key=sk", "k2v", expires, nil)
	rMax, _ := sdkPresign(t, "GET", "/bucket/pk?sort_key=sk", "k2v", MaxPresignExpires, nil)
	rZero, _ := sdkPresign(t, "GET", "/bucket/pk?sort_key=sk", "k2v", 0, nil)
	tests := []struct {
		name string
		r    *Request
		now  time.Time
		want error
	}{
		{"at-date", r, t0, nil},
		{"last-second", r, t0.Add(expires), nil},
		{"expired", r, t0.Add(expires + time.Second), ErrExpired},
		{"long-expired", r, t0.Add(30 * 24 * time.Hour), ErrExpired},
		{"early-within-skew", r, t0.Add(-DefaultMaxSkew), nil},
		{"early-beyond-skew", r, t0.Add(-DefaultMaxSkew - time.Second), ErrRequestTimeSkewed},
		{"max-expires-last-second", rMax, t0.Add(MaxPresignExpires), nil},
		{"max-expires-expired", rMax, t0.Add(MaxPresignExpires + time.Second), ErrExpired},
		{"zero-expires-now", rZero, t0, nil},
		{"zero-expires-later", rZero, t0.Add(time.Second), ErrExpired},
	}
	for _, tc := range tests {
		_, err := newTestVerifier("k2v", tc.now).Verify(tc.r, testLookup)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestVerifyPresignedTampered(t *testing.T) {
	r, _ := sdkPresign(t, "GET", "/bucket/pk?sort_key=sk", "k2v", 900*time.Second, [][2]string{{"X-Amz-Meta-Signed", "yes"}})
	// setParam replaces the value of a parameter of the raw query, or
	// removes it if value is "-".
	setParam := func(name, value string) func(*Request) *Request {
		return func(r *Request) *Request {
			var out []string
			for _, seg := range strings.Split(r.RawQuery, "&") {
				n, _, _ := strings.Cut(seg, "=")
				if n == name {
					if value == "-" {
						continue
					}
					seg = n + "=" + value
				}
				out = append(out, seg)
			}
			r.RawQuery = strings.Join(out, "&")
			return r
		}
	}
	addQuery := func(s string) func(*Request) *Request {
		return func(r *Request) *Request { r.RawQuery += "&" + s; return r }
	}
	tests := []struct {
		name string
		edit func(*Request) *Request
		want error
	}{
		{"untouched", func(r *Request) *Request { return r }, nil},
		{"param-name-escaped", func(r *Request) *Request {
			r.RawQuery = strings.Replace(r.RawQuery, "X-Amz-Algorithm=", "X%2DAmz-Algorithm=", 1)
			return r
		}, nil},
		{"method", func(r *Request) *Request { r.Method = "PUT"; return r }, ErrSignatureMismatch},
		{"path", func(r *Request) *Request { r.RawPath = "/bucket/pk2"; return r }, ErrSignatureMismatch},
		{"query", setParam("sort_key", "other"), ErrSignatureMismatch},
		{"query-added", addQuery("x=1"), ErrSignatureMismatch},
		{"signature", setParam("X-Amz-Signature", strings.Repeat("0", 64)), ErrSignatureMismatch},
		{"signature-short", setParam("X-Amz-Signature", "abc"), ErrMalformed},
		{"signature-repeated", addQuery("X-Amz-Signature=" + strings.Repeat("0", 64)), ErrMalformed},
		{"date", setParam("X-Amz-Date", t0.Add(time.Second).Format(amzDateLayout)), ErrSignatureMismatch},
		{"date-bad", setParam("X-Amz-Date", "20250314T123045"), ErrMalformed},
		{"expires-longer", setParam("X-Amz-Expires", "901"), ErrSignatureMismatch},
		{"expires-too-long", setParam("X-Amz-Expires", "604801"), ErrMalformed},
		{"expires-negative", setParam("X-Amz-Expires", "-1"), ErrMalformed},
		{"expires-not-number", setParam("X-Amz-Expires", "15m"), ErrMalformed},
		{"expires-empty", setParam("X-Amz-Expires", ""), ErrMalformed},
		{"expires-huge", setParam("X-Amz-Expires", "99999999999999999999"), ErrMalformed},
		{"algorithm", setParam("X-Amz-Algorithm", "AWS4-HMAC-SHA512"), ErrMalformed},
		{"signed-headers-no-host", setParam("X-Amz-SignedHeaders", "x-amz-meta-signed"), ErrMalformed},
		{"signed-headers-absent", setParam("X-Amz-SignedHeaders", "host%3Bx-amz-meta-signed%3Bx-amz-meta-other"), ErrMalformed},
		{"credential-service", setParam("X-Amz-Credential", testAKID+"%2F20250314%2Fgarage%2Fs3%2Faws4_request"), ErrScopeMismatch},
		{"credential-day", setParam("X-Amz-Credential", testAKID+"%2F20250315%2Fgarage%2Fk2v%2Faws4_request"), ErrScopeMismatch},
		{"credential-shape", setParam("X-Amz-Credential", testAKID+"%2F20250314%2Fgarage%2Fk2v"), ErrMalformed},
		{"credential-key", setParam("X-Amz-Credential", "GKother%2F20250314%2Fgarage%2Fk2v%2Faws4_request"), ErrUnknownKey},
		{"literal-percent", addQuery("x=%zz"), ErrSignatureMismatch},
		{"signed-header-value", func(r *Request) *Request { return r.setHeader("X-Amz-Meta-Signed", "no") }, ErrSignatureMismatch},
		{"unsigned-x-amz-header", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"X-Amz-Meta-Other", "1"})
			return r
		}, ErrMalformed},
		{"authorization-too", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00"})
			return r
		}, ErrMalformed},
	}
	for _, name := range []string{qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature} {
		want := ErrMalformed
		if name == qAlgorithm {
			want = ErrAnonymous // no longer presigned, and no Authorization header
		}
		tests = append(tests, struct {
			name string
			edit func(*Request) *Request
			want error
		}{"missing-" + name, setParam(name, "-"), want})
	}
	v := newTestVerifier("k2v", t0)
	for _, tc := range tests {
		_, err := v.Verify(tc.edit(r.clone()), testLookup)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: Verify = %v (%s), want %v", tc.name, err, errName(err), tc.want)
		}
	}
}

func TestPresignedHeaders(t *testing.T) {
	// The SDK moves X-Amz-* headers it does not require to sign as headers
	// into the query.
	r, _ := sdkPresign(t, "PUT", "/bucket/pk?sort_key=sk", "s3", time.Hour,
		[][2]string{{"X-Amz-Foo", "a b/c"}, {"X-Amz-Meta-Kept", "1"}})
	if _, err := newTestVerifier("s3", t0).Verify(r, testLookup); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	got, err := PresignedHeaders(r.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"x-amz-foo", "a b/c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PresignedHeaders(%q) = %q, want %q", r.RawQuery, got, want)
	}

	got, err = PresignedHeaders("X-Amz-Security-Token=t%2Bk&x-amz-acl=private&X-Amz-Signature=00&prefix=a&X-Amz-Date=x")
	want = []Header{{"x-amz-security-token", "t+k"}, {"x-amz-acl", "private"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PresignedHeaders = %q, %v, want %q", got, err, want)
	}
	if got, err := PresignedHeaders("X-Amz-Acl=%z"); err != nil || len(got) != 1 || got[0].Value != "%z" {
		t.Errorf("PresignedHeaders(literal %%) = %q, %v, want the value %%z", got, err)
	}
}
