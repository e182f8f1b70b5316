package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// AWS documentation examples ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk" and "Authenticating
// Requests: Using Query Parameters", Amazon S3 API reference). Signatures
// computed by AWS, not by us.
const (
	awsAKID   = "AKIAIOSFODNN7EXAMPLE"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsHost   = "examplebucket.s3.amazonaws.com"
	awsDate   = "20130524T000000Z"
)

var awsTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func awsAuthz(signedHeaders, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=" + awsAKID + "/20130524/us-east-1/s3/aws4_request,SignedHeaders=" +
		signedHeaders + ",Signature=" + sig
}

func TestVerifyAWSExamples(t *testing.T) {
	tests := []struct {
		name string
		r    *Request
		body string
	}{
		{"get-object", &Request{Method: "GET", RawPath: "/test.txt", Headers: []Header{
			{"Host", awsHost},
			{"Range", "bytes=0-9"},
			{"x-amz-content-sha256", emptyHash},
			{"x-amz-date", awsDate},
			{"Authorization", awsAuthz("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")},
		}}, ""},
		{"put-object", &Request{Method: "PUT", RawPath: "/test%24file.text", Headers: []Header{
			{"Host", awsHost},
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"Authorization", awsAuthz("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")},
			{"x-amz-date", awsDate},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
		}}, "Welcome to Amazon S3."},
		{"get-bucket-lifecycle", &Request{Method: "GET", RawPath: "/", RawQuery: "lifecycle", Headers: []Header{
			{"Host", awsHost},
			{"Authorization", awsAuthz("host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")},
			{"x-amz-date", awsDate},
			{"x-amz-content-sha256", emptyHash},
		}}, ""},
		{"list-objects", &Request{Method: "GET", RawPath: "/", RawQuery: "max-keys=2&prefix=J", Headers: []Header{
			{"Host", awsHost},
			{"Authorization", awsAuthz("host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")},
			{"x-amz-date", awsDate},
			{"x-amz-content-sha256", emptyHash},
		}}, ""},
		{"presigned-get-object", &Request{Method: "GET", RawPath: "/test.txt",
			RawQuery: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
			Headers:  []Header{{"Host", awsHost}}}, ""},
	}
	v := New(Config{Service: "s3", Region: "us-east-1", Now: fixedNow(awsTime)})
	for _, tc := range tests {
		a, err := v.Verify(tc.r, lookupOf(awsAKID, awsSecret))
		if err != nil {
			canon, _ := canonicalOf(v, tc.r)
			t.Errorf("%s: Verify = %v\ncanonical request:\n%s", tc.name, err, canon)
			continue
		}
		if err := a.CheckPayload([]byte(tc.body)); err != nil {
			t.Errorf("%s: CheckPayload = %v", tc.name, err)
		}
	}
}

// goldenCases are pinned canonical requests, in testdata/canonical/. The
// signatures are dummies: the files hold what is signed, not the result.
var goldenCases = []struct {
	name    string
	service string
	r       Request
}{
	{"k2v-read-item", "k2v", Request{Method: "GET", RawPath: "/my%20bucket/pk%2Fwith%2Fslashes/%C3%A9", RawQuery: "sort_key=a+b%2Bc", Headers: []Header{
		{"Host", "k2v.example.com:3904"},
		{"Accept", "application/octet-stream, application/json"},
		{"X-Amz-Date", "20250314T123045Z"},
		{"X-Amz-Content-Sha256", emptyHash},
		{"Authorization", testAuthz("accept;host;x-amz-content-sha256;x-amz-date")},
	}}},
	{"k2v-read-batch-keyword", "k2v", Request{Method: "POST", RawPath: "/bucket", RawQuery: "search", Headers: []Header{
		{"host", "localhost"},
		{"content-type", "application/json"},
		{"x-amz-date", "20250314T123045Z"},
		{"x-amz-content-sha256", "5a9b4c0b7fa3ad6b3d1b86d2a4a6ba6ee1f7a58f3c0c5c1cd6cf1a7b3f4b1c1d"},
		{"authorization", testAuthz("content-type;host;x-amz-content-sha256;x-amz-date")},
	}}},
	{"k2v-unsorted-signed-headers", "k2v", Request{Method: "PUT", RawPath: "/bucket/pk", RawQuery: "sort_key=sk", Headers: []Header{
		{"Host", "localhost"},
		{"X-Amz-Date", "20250314T123045Z"},
		{"X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"},
		{"X-Garage-Causality-Token", "AAAAAAAAAAA"},
		{"Authorization", testAuthz("X-Amz-Date;Host;x-garage-causality-token;x-amz-content-sha256")},
	}}},
	{"k2v-repeated-headers-and-spaces", "k2v", Request{Method: "PUT", RawPath: "/bucket/pk", RawQuery: "sort_key=sk", Headers: []Header{
		{"Host", " localhost "},
		{"X-Amz-Meta-A", "  1 "},
		{"X-Amz-Date", "20250314T123045Z"},
		{"x-amz-meta-a", "two  words"},
		{"X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
		{"X-Amz-Meta-Empty", ""},
		{"Authorization", testAuthz("host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-meta-empty")},
	}}},
	{"k2v-query-order", "k2v", Request{Method: "GET", RawPath: "/bucket", RawQuery: "prefix=&a-b=2&a=1&a=0&&b&c=%2f%7e%20+&%C3%A9=%E2%82%AC", Headers: []Header{
		{"Host", "localhost"},
		{"X-Amz-Date", "20250314T123045Z"},
		{"X-Amz-Content-Sha256", emptyHash},
		{"Authorization", testAuthz("host;x-amz-content-sha256;x-amz-date")},
	}}},
	{"k2v-empty-path", "k2v", Request{Method: "GET", RawPath: "", Headers: []Header{
		{"Host", "localhost"},
		{"X-Amz-Date", "20250314T123045Z"},
		{"X-Amz-Content-Sha256", emptyHash},
		{"Authorization", testAuthz("host;x-amz-content-sha256;x-amz-date")},
	}}},
	{"s3-raw-path", "s3", Request{Method: "PUT", RawPath: "/bucket/%C3%A9/a%2Fb+c/./x", RawQuery: "uploads", Headers: []Header{
		{"Host", "s3.localhost"},
		{"X-Amz-Date", "20250314T123045Z"},
		{"X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		{"X-Amz-Trailer", "x-amz-checksum-crc32"},
		{"Authorization", strings.Replace(testAuthz("host;x-amz-content-sha256;x-amz-date;x-amz-trailer"), "/k2v/", "/s3/", 1)},
	}}},
	{"k2v-presigned", "k2v", Request{Method: "GET", RawPath: "/bucket/pk",
		RawQuery: "sort_key=a+b&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + testAKID + "%2F20250314%2Fgarage%2Fk2v%2Faws4_request&X-Amz-Date=20250314T123045Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("ab", 32),
		Headers:  []Header{{"Host", "localhost"}}}},
}

func testAuthz(signedHeaders string) string {
	return "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20250314/garage/k2v/aws4_request, SignedHeaders=" +
		signedHeaders + ", Signature=" + strings.Repeat("ab", 32)
}

func TestCanonicalGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(tc.service, t0)
			var p params
			if err := v.parse(&tc.r, &p); err != nil {
				t.Fatal(err)
			}
			canon, err := v.appendCanonicalRequest(nil, &tc.r, &p, new(scratch), false)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(canon)
			sts := appendStringToSign(nil, p.amzDate, p.scope, h[:])
			got := fmt.Sprintf("# canonical request\n%s\n# string to sign\n%s\n", canon, sts)

			path := filepath.Join("testdata", "canonical", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("canonical request of %s changed (run with -update and review the diff)\ngot:\n%s\nwant:\n%s", tc.name, got, want)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	const sig = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
	const cred = "Credential=AKID/20250101/garage/k2v/aws4_request"
	const sh = "SignedHeaders=host;x-amz-date"
	tests := []struct {
		in   string
		want error
	}{
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig, nil},
		{"AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + sig, nil},
		{"AWS4-HMAC-SHA256   " + cred + " ,  " + sh + " ,\tSignature=" + sig + "  ", nil},
		{"AWS4-HMAC-SHA256 Signature=" + sig + ", " + sh + ", " + cred, nil},
		{"AWS4-HMAC-SHA256 Signature=" + strings.ToUpper(sig) + ", " + sh + ", " + cred, nil},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh, ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + cred + ", " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig + ", Foo=bar", ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig + ",", ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig[:63], ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig[:63] + "g", ErrMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256" + cred + ", " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA512 " + cred + ", " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS AKID:c2lnbmF0dXJl", ErrMalformed},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/garage/k2v, " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/garage/k2v/aws4_request/x, " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256 Credential=/20250101/garage/k2v/aws4_request, " + sh + ", Signature=" + sig, ErrMalformed},
		{"AWS4-HMAC-SHA256 Credential=AKID//garage/k2v/aws4_request, " + sh + ", Signature=" + sig, ErrMalformed},
		{"", ErrMalformed},
	}
	for _, tc := range tests {
		var p params
		err := parseAuthorization(tc.in, &p)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("parseAuthorization(%q) = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if err == nil && (p.accessKey != "AKID" || p.scope != "20250101/garage/k2v/aws4_request" ||
			p.scopeDate != "20250101" || p.scopeRegion != "garage" || p.scopeService != "k2v" ||
			p.scopeTerm != "aws4_request" || p.signedHeaders != "host;x-amz-date" || fmt.Sprintf("%x", p.signature) != sig) {
			t.Errorf("parseAuthorization(%q) = %+v", tc.in, p)
		}
	}
}

func TestCanonicalSignedHeaders(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"host", "host", nil},
		{"host;x-amz-date", "host;x-amz-date", nil},
		{"x-amz-date;host", "host;x-amz-date", nil},
		{"Host;X-Amz-Date", "host;x-amz-date", nil},
		{"content-type;host;x-amz-content-sha256;x-amz-date", "content-type;host;x-amz-content-sha256;x-amz-date", nil},
		{"host;host", "", ErrMalformed},
		{"host;Host", "", ErrMalformed},
		{"x-amz-date;host;x-amz-date", "", ErrMalformed},
		{"", "", ErrMalformed},
		{";host", "", ErrMalformed},
		{"host;", "", ErrMalformed},
		{"host;;x-amz-date", "", ErrMalformed},
		{"host;x amz", "", ErrMalformed},
		{"host;x:amz", "", ErrMalformed},
		{"host;\xc3\xa9", "", ErrMalformed},
	}
	for _, tc := range tests {
		got, err := canonicalSignedHeaders(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("canonicalSignedHeaders(%q) = %q, %v, want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: malformed
	}{
		{"20250314T123045Z", t0},
		{"20240229T000000Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"20251231T235959Z", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"20250229T000000Z", time.Time{}},
		{"20250431T000000Z", time.Time{}},
		{"20251301T000000Z", time.Time{}},
		{"20250001T000000Z", time.Time{}},
		{"20250100T000000Z", time.Time{}},
		{"20250101T240000Z", time.Time{}},
		{"20250101T006000Z", time.Time{}},
		{"20250101T000060Z", time.Time{}},
		{"20250101T000000", time.Time{}},
		{"20250101T000000z", time.Time{}},
		{"20250101 000000Z", time.Time{}},
		{"2025010T1000000Z", time.Time{}},
		{"+0250101T000000Z", time.Time{}},
		{"2025-01-01T00:00:00Z", time.Time{}},
		{"", time.Time{}},
	}
	for _, tc := range tests {
		var p params
		err := parseDate(tc.in, &p)
		switch {
		case tc.want.IsZero() && !errors.Is(err, ErrMalformed):
			t.Errorf("parseDate(%q) = %v, %v, want ErrMalformed", tc.in, p.date, err)
		case !tc.want.IsZero() && (err != nil || !p.date.Equal(tc.want) || p.amzDate != tc.in):
			t.Errorf("parseDate(%q) = %v, %v, want %v", tc.in, p.date, err, tc.want)
		}
	}
}

func TestParsePayloadHash(t *testing.T) {
	tests := []struct {
		in   string
		want PayloadMode // 0: malformed
	}{
		{emptyHash, PayloadSHA256},
		{"UNSIGNED-PAYLOAD", PayloadUnsigned},
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", PayloadStreamingSigned},
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", PayloadStreamingSignedTrailer},
		{"STREAMING-UNSIGNED-PAYLOAD-TRAILER", PayloadStreamingUnsignedTrailer},
		{"STREAMING-UNSIGNED-PAYLOAD", 0},
		{"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", 0},
		{"unsigned-payload", 0},
		{strings.ToUpper(emptyHash), 0},
		{emptyHash[:63], 0},
		{emptyHash + "0", 0},
		{"", 0},
	}
	for _, tc := range tests {
		var p params
		err := parsePayloadHash(tc.in, &p)
		if tc.want == 0 && !errors.Is(err, ErrMalformed) || tc.want != 0 && (err != nil || p.mode != tc.want) {
			t.Errorf("parsePayloadHash(%q) = %v, %v, want %v", tc.in, p.mode, err, tc.want)
		}
	}
}

func TestAppendReencoded(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"abcXYZ019-_.~", "abcXYZ019-_.~", false},
		{"a+b", "a%20b", false},
		{"a%20b", "a%20b", false},
		{"a%2Bb", "a%2Bb", false},
		{"a%2bb", "a%2Bb", false},
		{"a/b", "a%2Fb", false},
		{"%7e%7E~", "~~~", false},
		{"%41", "A", false},
		{"é", "%C3%A9", false},
		{"=&?#", "%3D%26%3F%23", false},
		// a '%' that starts no valid escape is a literal '%'
		{"%", "%25", false},
		{"%4", "%254", false},
		{"%zz", "%25zz", false},
		{"a%2", "a%252", false},
	}
	for _, tc := range tests {
		got, err := appendReencoded(nil, tc.in)
		if tc.err != (err != nil) || !tc.err && string(got) != tc.want {
			t.Errorf("appendReencoded(%q) = %q, %v, want %q (err %v)", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("appendReencoded(%q) error %v does not wrap ErrMalformed", tc.in, err)
		}
	}
}

func TestHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf hmacBuf
	for n := range 300 {
		var key [32]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		got := hmacSHA256(&buf, &key, msg)
		m := hmac.New(sha256.New, key[:])
		m.Write(msg)
		if want := m.Sum(nil); !hmac.Equal(got[:], want) {
			t.Fatalf("hmacSHA256(%x, %d bytes) = %x, want %x", key, n, got, want)
		}
	}
}

func TestKeyCache(t *testing.T) {
	var c keyCache
	want := [32]byte(refSigningKey(testSecret, "20250314", "garage", "k2v"))
	if got := c.get(testSecret, "20250314", "garage", "k2v"); got != want {
		t.Fatalf("get = %x, want %x", got, want)
	}
	if got := c.get(testSecret, "20250314", "garage", "k2v"); got != want {
		t.Fatalf("cached get = %x, want %x", got, want)
	}
	// A rotated secret must not get the old key.
	want2 := [32]byte(refSigningKey(testSecret+"2", "20250314", "garage", "k2v"))
	if got := c.get(testSecret+"2", "20250314", "garage", "k2v"); got != want2 {
		t.Fatalf("get(new secret) = %x, want %x", got, want2)
	}
	for _, tc := range []struct{ date, region, service string }{
		{"20250315", "garage", "k2v"}, {"20250314", "auto", "k2v"}, {"20250314", "garage", "s3"},
	} {
		want := [32]byte(refSigningKey(testSecret, tc.date, tc.region, tc.service))
		if got := c.get(testSecret, tc.date, tc.region, tc.service); got != want {
			t.Errorf("get(%v) = %x, want %x", tc, got, want)
		}
	}
	for i := range 3 * keyCacheSize {
		c.get(fmt.Sprint(i), "20250314", "garage", "k2v")
		if n := len(c.mu.keys); n > keyCacheSize {
			t.Fatalf("cache holds %d keys, bound is %d", n, keyCacheSize)
		}
	}
	if got := c.get(testSecret, "20250314", "garage", "k2v"); got != want {
		t.Fatalf("get after reset = %x, want %x", got, want)
	}
}

func TestVerifyMalformedHeaders(t *testing.T) {
	base := goldenCases[0].r
	tests := []struct {
		name string
		edit func(*Request) *Request
		want error
	}{
		{"no-x-amz-date-but-date", func(r *Request) *Request {
			r.delHeader("X-Amz-Date")
			r.Headers = append(r.Headers, Header{"Date", "Fri, 14 Mar 2025 12:30:45 GMT"})
			return r
		}, ErrMalformed},
		{"two-dates", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"X-Amz-Date", "20250314T123045Z"})
			return r
		}, ErrMalformed},
		{"two-content-sha256", func(r *Request) *Request {
			r.Headers = append(r.Headers, Header{"x-amz-content-sha256", emptyHash})
			return r
		}, ErrMalformed},
		{"host-not-signed", func(r *Request) *Request {
			return r.setHeader("Authorization", testAuthz("accept;x-amz-content-sha256;x-amz-date"))
		}, ErrMalformed},
		{"x-amz-date-not-signed", func(r *Request) *Request {
			return r.setHeader("Authorization", testAuthz("accept;host;x-amz-content-sha256"))
		}, ErrMalformed},
		{"signed-header-absent", func(r *Request) *Request {
			return r.setHeader("Authorization", testAuthz("accept;content-type;host;x-amz-content-sha256;x-amz-date"))
		}, ErrMalformed},
		{"streaming-unsigned-no-trailer", func(r *Request) *Request {
			return r.setHeader("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD")
		}, ErrMalformed},
		// a literal '%' is not malformed: it changes what was signed
		{"added-literal-percent", func(r *Request) *Request { r.RawQuery += "&x=%g0"; return r }, ErrSignatureMismatch},
		{"scope-terminator", func(r *Request) *Request {
			return r.setHeader("Authorization", strings.Replace(testAuthz("accept;host;x-amz-content-sha256;x-amz-date"), "aws4_request", "aws5_request", 1))
		}, ErrScopeMismatch},
		{"valid-but-dummy-signature", func(r *Request) *Request { return r }, ErrSignatureMismatch},
	}
	v := newTestVerifier("k2v", t0)
	for _, tc := range tests {
		lookupCalled := false
		_, err := v.Verify(tc.edit(base.clone()), func(id string) (string, error) {
			lookupCalled = true
			return testLookup(id)
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v (%s), want %v", tc.name, err, errName(err), tc.want)
		}
		if lookupCalled != (tc.want == ErrSignatureMismatch) {
			t.Errorf("%s: lookup called = %v", tc.name, lookupCalled)
		}
	}

	storageErr := errors.New("pebble: closed")
	_, err := v.Verify(base.clone(), func(string) (string, error) { return "", storageErr })
	if !errors.Is(err, storageErr) || errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify with a failing lookup = %v, want it wrapped", err)
	}
}

func TestVerifyEmptyConfig(t *testing.T) {
	// An empty region matches nothing, rather than an empty scope region.
	r := goldenCases[0].r
	r.Headers = append([]Header(nil), r.Headers...)
	r.setHeader("Authorization", strings.Replace(testAuthz("accept;host;x-amz-content-sha256;x-amz-date"), "/garage/", "//", 1))
	for _, cfg := range []Config{{Service: "k2v"}, {Service: "k2v", Region: "garage"}} {
		cfg.Now = fixedNow(t0)
		if _, err := New(cfg).Verify(&r, testLookup); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(empty scope region) with %+v = %v, want ErrMalformed", cfg, err)
		}
	}
	if _, err := New(Config{Service: "k2v", Now: fixedNow(t0)}).Verify(&goldenCases[0].r, testLookup); !errors.Is(err, ErrScopeMismatch) {
		t.Errorf("Verify with empty Config.Region = %v, want ErrScopeMismatch", err)
	}
}
