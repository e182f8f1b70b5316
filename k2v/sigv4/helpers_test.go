package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

const (
	testAKID   = "GKa1b2c3d4e5f60718293a4b5c"
	testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testRegion = "garage"
	emptyHash  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// t0 is the signing time of most tests: mid-day, so that a shift of an hour
// stays on the same day.
var t0 = time.Date(2025, 3, 14, 12, 30, 45, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestVerifier(service string, now time.Time) *Verifier {
	return New(Config{
		Service:    service,
		Region:     testRegion,
		AltRegions: []string{"us-east-1", "auto"},
		Now:        fixedNow(now),
	})
}

// lookupOf returns a Lookup knowing one key.
func lookupOf(akid, secret string) Lookup {
	return func(id string) (string, error) {
		if id != akid {
			return "", fmt.Errorf("key %s: %w", id, ErrUnknownKey)
		}
		return secret, nil
	}
}

var testLookup = lookupOf(testAKID, testSecret)

// sdkSign signs req with the AWS SDK signer the way an SDK client of the
// service would (S3 clients disable path escaping), after setting
// X-Amz-Content-Sha256 to payloadHash, and returns the canonical request the
// SDK computed (from its signing log).
//
// The SDK rewrites req.URL.RawQuery into its own canonical encoding; sdkSign
// puts the original back, as a client that does not rewrite (e.g. the Rust
// SDK used by Garage's client) would send it: same parameters, other bytes.
func sdkSign(t testing.TB, req *http.Request, service, region, payloadHash string, at time.Time) string {
	t.Helper()
	rawQuery := req.URL.RawQuery
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	var canonical string
	err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		req, payloadHash, service, region, at,
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
	req.URL.RawQuery = rawQuery
	return canonical
}

// sdkCanonical extracts the canonical request from the SDK's signing log.
func sdkCanonical(log string) string {
	_, after, _ := strings.Cut(log, "---[ CANONICAL STRING  ]-----------------------------\n")
	before, _, _ := strings.Cut(after, "\n---[ STRING TO SIGN ]")
	return before
}

// wireRequest serialises req as net/http's client would send it and
// parses the result back into a Request: what a server receives.
func wireRequest(t testing.TB, req *http.Request) *Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(&buf)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSuffix(line, "\r\n"), " ")
	if len(parts) != 3 {
		t.Fatalf("request line %q", line)
	}
	r := &Request{Method: parts[0]}
	r.RawPath, r.RawQuery, _ = strings.Cut(parts[1], "?")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("header line %q", line)
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
	}
	return r
}

// canonicalOf returns the canonical request Verify computes for r.
func canonicalOf(v *Verifier, r *Request) (string, error) {
	var p params
	if err := v.parse(r, &p); err != nil {
		return "", err
	}
	s := new(scratch)
	b, err := v.appendCanonicalRequest(nil, r, &p, s, false)
	return string(b), err
}

// clone returns a deep copy of r, to tamper with.
func (r *Request) clone() *Request {
	c := *r
	c.Headers = append([]Header(nil), r.Headers...)
	return &c
}

// setHeader replaces the value of every header named name.
func (r *Request) setHeader(name, value string) *Request {
	for i := range r.Headers {
		if EqualFoldASCII(r.Headers[i].Name, name) {
			r.Headers[i].Value = value
		}
	}
	return r
}

func (r *Request) delHeader(name string) *Request {
	hs := r.Headers[:0]
	for _, h := range r.Headers {
		if !EqualFoldASCII(h.Name, name) {
			hs = append(hs, h)
		}
	}
	r.Headers = hs
	return r
}

// refSigningKey derives a signing key the long way, independently of the
// package's cache.
func refSigningKey(secret, date, region, service string) []byte {
	k := []byte("AWS4" + secret)
	for _, s := range []string{date, region, service, "aws4_request"} {
		k = refHMAC(k, s)
	}
	return k
}

func refHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// errName names the sentinel err wraps, for test messages.
func errName(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{ErrAnonymous, "ErrAnonymous"},
		{ErrMalformed, "ErrMalformed"},
		{ErrScopeMismatch, "ErrScopeMismatch"},
		{ErrRequestTimeSkewed, "ErrRequestTimeSkewed"},
		{ErrExpired, "ErrExpired"},
		{ErrUnknownKey, "ErrUnknownKey"},
		{ErrSignatureMismatch, "ErrSignatureMismatch"},
		{ErrPayloadMismatch, "ErrPayloadMismatch"},
	} {
		if err != nil && errors.Is(err, s.err) {
			return s.name
		}
	}
	if err == nil {
		return "nil"
	}
	return "other(" + err.Error() + ")"
}
