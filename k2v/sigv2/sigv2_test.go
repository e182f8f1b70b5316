package sigv2

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// The credentials of the AWS documentation's examples.
const (
	exampleKey    = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func lookupFor(keys map[string]string) Lookup {
	return func(id string) (string, error) {
		s, ok := keys[id]
		if !ok {
			return "", fmt.Errorf("no key %q: %w", id, ErrUnknownKey)
		}
		return s, nil
	}
}

var exampleLookup = lookupFor(map[string]string{exampleKey: exampleSecret})

func at(s string) func() time.Time {
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return t }
}

func hs(kv ...string) []Header {
	var h []Header
	for i := 0; i < len(kv); i += 2 {
		h = append(h, Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

// awsCase is an example of "Signing and authenticating REST requests (AWS
// signature version 2)", Amazon S3 API reference: the request, the
// StringToSign the page gives, and the Authorization it gives.
type awsCase struct {
	name   string
	r      Request
	bucket string // virtual-hosted bucket, from the Host header
	sts    string
	sig    string
}

var awsCases = []awsCase{
	{
		name: "Object GET",
		r: Request{Method: "GET", RawPath: "/photos/puppy.jpg", Headers: hs(
			"Host", "johnsmith.s3.amazonaws.com",
			"Date", "Tue, 27 Mar 2007 19:36:42 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")},
		bucket: "johnsmith",
		sts:    "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
		sig:    "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
	},
	{
		name: "Object PUT",
		r: Request{Method: "PUT", RawPath: "/photos/puppy.jpg", Headers: hs(
			"Content-Type", "image/jpeg",
			"Content-Length", "94328",
			"Host", "johnsmith.s3.amazonaws.com",
			"Date", "Tue, 27 Mar 2007 21:15:45 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg=")},
		bucket: "johnsmith",
		sts:    "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
		sig:    "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
	},
	{
		name: "List",
		r: Request{Method: "GET", RawPath: "/", RawQuery: "prefix=photos&max-keys=50&marker=puppy", Headers: hs(
			"User-Agent", "Mozilla/5.0",
			"Host", "johnsmith.s3.amazonaws.com",
			"Date", "Tue, 27 Mar 2007 19:42:41 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U=")},
		bucket: "johnsmith",
		sts:    "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
		sig:    "htDYFYduRNen8P9ZfE/s9SuKy0U=",
	},
	{
		name: "Fetch ACL",
		r: Request{Method: "GET", RawPath: "/", RawQuery: "acl", Headers: hs(
			"Host", "johnsmith.s3.amazonaws.com",
			"Date", "Tue, 27 Mar 2007 19:44:46 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=")},
		bucket: "johnsmith",
		sts:    "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
		sig:    "c2WLPFtWHVgbEmeEG93a4cG37dM=",
	},
	{
		name: "Upload (CNAME bucket, x-amz-meta headers)",
		r: Request{Method: "PUT", RawPath: "/db-backup.dat.gz", Headers: hs(
			"User-Agent", "curl/7.15.5",
			"Host", "static.johnsmith.net:8080",
			"Date", "Tue, 27 Mar 2007 21:06:08 +0000",
			"x-amz-acl", "public-read",
			"content-type", "application/x-download",
			"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw==",
			"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net",
			"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net",
			"X-Amz-Meta-FileChecksum", "0x02661779",
			"X-Amz-Meta-ChecksumAlgorithm", "crc32",
			"Content-Disposition", "attachment; filename=database.dat",
			"Content-Encoding", "gzip",
			"Content-Length", "5913339",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc=")},
		bucket: "static.johnsmith.net",
		sts: "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n" +
			"x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\n" +
			"x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n/static.johnsmith.net/db-backup.dat.gz",
		sig: "ilyl83RwaSoYIEdixDQcA4OnAnc=",
	},
	{
		name: "List all my buckets",
		r: Request{Method: "GET", RawPath: "/", Headers: hs(
			"Host", "s3.amazonaws.com",
			"Date", "Wed, 28 Mar 2007 01:29:59 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s=")},
		sts: "GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/",
		sig: "qGdzdERIC03wnaRNKh6OqZehG9s=",
	},
	{
		name: "Unicode keys (path kept percent-encoded as received)",
		r: Request{Method: "GET", RawPath: "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", Headers: hs(
			"Host", "s3.amazonaws.com",
			"Date", "Wed, 28 Mar 2007 01:49:49 +0000",
			"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM=")},
		sts: "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
		sig: "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
	},
}

func dateOf(t *testing.T, r *Request) string {
	t.Helper()
	for _, h := range r.Headers {
		if h.Name == "Date" {
			return h.Value
		}
	}
	t.Fatal("no Date")
	return ""
}

// TestAWSExamples verifies the AWS documentation's header-form examples:
// the string to sign this package builds is the page's, and Verify accepts
// the page's signature at the time of the request.
func TestAWSExamples(t *testing.T) {
	for _, c := range awsCases {
		t.Run(c.name, func(t *testing.T) {
			v := New(Config{Now: at(dateOf(t, &c.r))})
			var p params
			if err := v.parse(&c.r, &p); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := string(appendStringToSign(nil, &c.r, c.bucket, &p)); got != c.sts {
				t.Fatalf("string to sign:\n%q\nwant\n%q", got, c.sts)
			}
			if got := sign(exampleSecret, c.sts); got != c.sig {
				t.Fatalf("signature of the page's string to sign = %s, want %s", got, c.sig)
			}
			a, err := v.Verify(&c.r, c.bucket, exampleLookup)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKeyID != exampleKey || a.Presigned {
				t.Fatalf("Auth = %+v", a)
			}
		})
	}
}

// TestAWSDeleteExample: the page's DELETE example sends both Date and
// x-amz-date, but its StringToSign puts the x-amz-date value on the Date
// line and omits it from the x-amz-* headers, contrary to the page's own
// rule (and to botocore and s3cmd). Only the HMAC of its StringToSign is
// checked here; the request itself is verified under the documented rule
// with a signature from the test signer.
func TestAWSDeleteExample(t *testing.T) {
	const sts = "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
	if got := sign(exampleSecret, sts); got != "lx3byBScXR6KzyMaifNkardMwNk=" {
		t.Fatalf("signature = %s", got)
	}
	r := Request{Method: "DELETE", RawPath: "/johnsmith/photos/puppy.jpg", Headers: hs(
		"User-Agent", "dotnet",
		"Host", "s3.amazonaws.com",
		"Date", "Tue, 27 Mar 2007 21:20:27 +0000",
		"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000")}
	want := "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
	if got := testStringToSign(&r, "", ""); got != want {
		t.Fatalf("test signer string to sign %q, want %q", got, want)
	}
	r.Headers = append(r.Headers, Header{Name: "Authorization", Value: "AWS " + exampleKey + ":" + sign(exampleSecret, want)})
	v := New(Config{Now: at("Tue, 27 Mar 2007 21:20:26 +0000")})
	if _, err := v.Verify(&r, "", exampleLookup); err != nil {
		t.Fatal(err)
	}
}

// TestAWSQueryExamples: the query-string authentication examples. The
// current page's (AKIAIOSFODNN7EXAMPLE, Expires=1175139620) and the 2006
// developer guide's (key 44CF9590006BF252F707, Expires=1141889120,
// Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D, path-style /quotes/nelson).
func TestAWSQueryExamples(t *testing.T) {
	cases := []struct {
		name, key, secret string
		r                 Request
		bucket            string
		expires           int64
	}{
		{
			name: "S3 API reference", key: exampleKey, secret: exampleSecret,
			r: Request{Method: "GET", RawPath: "/photos/puppy.jpg",
				RawQuery: "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D",
				Headers:  hs("Host", "johnsmith.s3.amazonaws.com")},
			bucket: "johnsmith", expires: 1175139620,
		},
		{
			name: "2006 developer guide", key: "44CF9590006BF252F707", secret: "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV",
			r: Request{Method: "GET", RawPath: "/quotes/nelson",
				RawQuery: "AWSAccessKeyId=44CF9590006BF252F707&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D",
				Headers:  hs("Host", "s3.amazonaws.com")},
			expires: 1141889120,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exp := time.Unix(c.expires, 0)
			lookup := lookupFor(map[string]string{c.key: c.secret})
			v := New(Config{Now: func() time.Time { return exp.Add(-time.Minute) }})
			a, err := v.Verify(&c.r, c.bucket, lookup)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKeyID != c.key || !a.Presigned || !a.Date.Equal(exp) {
				t.Fatalf("Auth = %+v", a)
			}
			// One second after Expires it is refused.
			v = New(Config{Now: func() time.Time { return exp.Add(time.Second) }})
			if _, err := v.Verify(&c.r, c.bucket, lookup); !errors.Is(err, ErrExpired) {
				t.Fatalf("after Expires: %v, want ErrExpired", err)
			}
			// Issued more than 7 days (+ skew) ahead of now: refused.
			v = New(Config{Now: func() time.Time { return exp.Add(-MaxPresignExpires - DefaultMaxSkew - time.Second) }})
			if _, err := v.Verify(&c.r, c.bucket, lookup); !errors.Is(err, ErrMalformed) {
				t.Fatalf("too far ahead: %v, want ErrMalformed", err)
			}
			v = New(Config{Now: func() time.Time { return exp.Add(-MaxPresignExpires) }})
			if _, err := v.Verify(&c.r, c.bucket, lookup); err != nil {
				t.Fatalf("exactly 7 days ahead: %v", err)
			}
		})
	}
}

// sign is the test's HMAC-SHA1, written with crypto/hmac directly.
func sign(secret, sts string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// testStringToSign is an independent, straightforward rendering of the
// header-form rule of the AWS page, used to sign extra cases.
//
// expires is the Expires of a presigned request, "" for the header form.
func testStringToSign(r *Request, bucket, expires string) string {
	get := func(name string) (string, bool) {
		for _, h := range r.Headers {
			if strings.ToLower(h.Name) == name {
				return strings.Trim(h.Value, " \t\r\n\v\f"), true
			}
		}
		return "", false
	}
	md5, _ := get("content-md5")
	ctype, _ := get("content-type")
	date, _ := get("date")
	if _, ok := get("x-amz-date"); ok {
		date = ""
	}
	if expires != "" {
		date = expires
	}
	amz := map[string][]string{}
	var names []string
	for _, h := range r.Headers {
		n := strings.ToLower(h.Name)
		if strings.HasPrefix(n, "x-amz-") {
			if amz[n] == nil {
				names = append(names, n)
			}
			amz[n] = append(amz[n], strings.Trim(h.Value, " \t\r\n\v\f"))
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(r.Method + "\n" + md5 + "\n" + ctype + "\n" + date + "\n")
	for _, n := range names {
		b.WriteString(n + ":" + strings.Join(amz[n], ",") + "\n")
	}
	if bucket != "" {
		b.WriteString("/" + bucket)
	}
	if r.RawPath == "" {
		b.WriteString("/")
	}
	b.WriteString(r.RawPath)
	var subs []string
	for _, kv := range strings.Split(r.RawQuery, "&") {
		k, val, hasVal := strings.Cut(kv, "=")
		switch k {
		case "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber",
			"policy", "requestPayment", "response-cache-control", "response-content-disposition",
			"response-content-encoding", "response-content-language", "response-content-type",
			"response-expires", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId",
			"versioning", "versions", "website":
			if hasVal {
				dv, err := url.PathUnescape(val)
				if err != nil {
					panic("test signer: bad escape in " + val)
				}
				k += "=" + dv
			}
			subs = append(subs, k)
		}
	}
	sort.SliceStable(subs, func(i, j int) bool {
		a, _, _ := strings.Cut(subs[i], "=")
		b, _, _ := strings.Cut(subs[j], "=")
		return a < b
	})
	if len(subs) > 0 {
		b.WriteString("?" + strings.Join(subs, "&"))
	}
	return b.String()
}

// signHeader adds an Authorization header computed by the test signer.
func signHeader(r *Request, bucket, key, secret string) {
	r.Headers = append(r.Headers, Header{Name: "Authorization", Value: "AWS " + key + ":" + sign(secret, testStringToSign(r, bucket, ""))})
}

// presign appends the query authentication parameters computed by the test
// signer.
func presign(r *Request, bucket, key, secret string, expires int64) {
	e := fmt.Sprint(expires)
	sep := "&"
	if r.RawQuery == "" {
		sep = ""
	}
	r.RawQuery += sep + "AWSAccessKeyId=" + url.QueryEscape(key) + "&Expires=" + e
	sig := sign(secret, testStringToSign(r, bucket, e))
	r.RawQuery += "&Signature=" + url.QueryEscape(sig)
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testVerifier() *Verifier { return New(Config{Now: func() time.Time { return testNow }}) }

// TestSubResources: sub-resources are sorted, their values decoded, other
// parameters ignored; x-amz-date replaces the Date line.
func TestSubResources(t *testing.T) {
	r := Request{Method: "GET", RawPath: "/b/k%20ey", RawQuery: "versionId=3%2B4&response-content-type=text%2Fplain&max-keys=5&acl&uploads=", Headers: hs(
		"Host", "example.com",
		"x-amz-date", testNow.Format(time.RFC1123),
		"X-Amz-Security-Token", "  tok  ")}
	want := "GET\n\n\n\nx-amz-date:" + testNow.Format(time.RFC1123) + "\nx-amz-security-token:tok\n" +
		"/b/k%20ey?acl&response-content-type=text/plain&uploads=&versionId=3+4"
	if got := testStringToSign(&r, "", ""); got != want {
		t.Fatalf("test signer: %q, want %q", got, want)
	}
	signHeader(&r, "", exampleKey, exampleSecret)
	var p params
	v := testVerifier()
	if err := v.parse(&r, &p); err != nil {
		t.Fatal(err)
	}
	if got := string(appendStringToSign(nil, &r, "", &p)); got != want {
		t.Fatalf("string to sign: %q, want %q", got, want)
	}
	if _, err := v.Verify(&r, "", exampleLookup); err != nil {
		t.Fatal(err)
	}
}

// TestPresignedQueryHeaders: botocore's SigV2 presigner moves Content-Type,
// Content-MD5 and x-amz-* headers into the query; they are signed as headers.
func TestPresignedQueryHeaders(t *testing.T) {
	exp := testNow.Add(time.Hour).Unix()
	sts := fmt.Sprintf("PUT\n\ntext/plain\n%d\nx-amz-security-token:tok\n/b/k", exp)
	q := url.Values{}
	q.Set("AWSAccessKeyId", exampleKey)
	q.Set("Expires", fmt.Sprint(exp))
	q.Set("content-type", "text/plain")
	q.Set("x-amz-security-token", "tok")
	q.Set("Signature", sign(exampleSecret, sts))
	r := Request{Method: "PUT", RawPath: "/b/k", RawQuery: q.Encode()}
	if _, err := testVerifier().Verify(&r, "", exampleLookup); err != nil {
		t.Fatal(err)
	}
}

func TestNegative(t *testing.T) {
	date := testNow.Format(time.RFC1123)
	base := func() Request {
		return Request{Method: "PUT", RawPath: "/bucket/key", RawQuery: "uploadId=7&partNumber=2", Headers: hs(
			"Host", "s3.example.com",
			"Date", date,
			"Content-Type", "application/octet-stream",
			"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==",
			"x-amz-meta-a", "1")}
	}
	signed := func(secret string) Request {
		r := base()
		signHeader(&r, "", exampleKey, secret)
		return r
	}
	good := signed(exampleSecret)
	if _, err := testVerifier().Verify(&good, "", exampleLookup); err != nil {
		t.Fatalf("good request: %v", err)
	}
	setAuth := func(r Request, a string) Request {
		r.Headers = append(r.Headers[:len(r.Headers):len(r.Headers)], Header{Name: "authorization", Value: a})
		return r
	}
	withHeaders := func(r Request, kv ...string) Request {
		r.Headers = append(r.Headers[:len(r.Headers):len(r.Headers)], hs(kv...)...)
		return r
	}
	without := func(r Request, name string) Request {
		var out []Header
		for _, h := range r.Headers {
			if !strings.EqualFold(h.Name, name) {
				out = append(out, h)
			}
		}
		r.Headers = out
		return r
	}
	mod := func(f func(*Request)) Request {
		r := good
		r.Headers = append([]Header(nil), good.Headers...)
		f(&r)
		return r
	}
	exp := testNow.Add(time.Hour).Unix()
	presigned := func(expires int64) Request {
		r := Request{Method: "GET", RawPath: "/bucket/key", RawQuery: "versionId=1"}
		presign(&r, "", exampleKey, exampleSecret, expires)
		return r
	}

	cases := []struct {
		name   string
		r      Request
		bucket string
		now    time.Time
		want   error
	}{
		{"anonymous", base(), "", testNow, ErrAnonymous},
		{"wrong secret", signed("not the secret"), "", testNow, ErrSignatureMismatch},
		{"unknown key", setAuth(base(), "AWS AKIDUNKNOWN:"+sign(exampleSecret, testStringToSign(ptr(base()), "", ""))), "", testNow, ErrUnknownKey},
		{"tampered path", mod(func(r *Request) { r.RawPath = "/bucket/key2" }), "", testNow, ErrSignatureMismatch},
		{"path percent-decoded", mod(func(r *Request) { r.RawPath = "/bucket/%6Bey" }), "", testNow, ErrSignatureMismatch},
		{"tampered sub-resource", mod(func(r *Request) { r.RawQuery = "uploadId=8&partNumber=2" }), "", testNow, ErrSignatureMismatch},
		{"added sub-resource", mod(func(r *Request) { r.RawQuery += "&acl" }), "", testNow, ErrSignatureMismatch},
		{"virtual bucket not signed", good, "bucket", testNow, ErrSignatureMismatch},
		{"tampered method", mod(func(r *Request) { r.Method = "POST" }), "", testNow, ErrSignatureMismatch},
		{"tampered content-type", mod(func(r *Request) { r.Headers[2].Value = "text/plain" }), "", testNow, ErrSignatureMismatch},
		{"tampered amz header", mod(func(r *Request) { r.Headers[4].Value = "2" }), "", testNow, ErrSignatureMismatch},
		{"added amz header", withHeaders(good, "x-amz-acl", "public-read"), "", testNow, ErrSignatureMismatch},
		{"removed md5", without(good, "content-md5"), "", testNow, ErrSignatureMismatch},
		{"two content-type", withHeaders(good, "content-type", "x/y"), "", testNow, ErrMalformed},
		{"other scheme", setAuth(base(), "AWS4-HMAC-SHA256 Credential=x"), "", testNow, ErrMalformed},
		{"no colon", setAuth(base(), "AWS "+exampleKey), "", testNow, ErrMalformed},
		{"empty key", setAuth(base(), "AWS :"+sign("x", "y")), "", testNow, ErrMalformed},
		{"short signature", setAuth(base(), "AWS "+exampleKey+":abcd"), "", testNow, ErrMalformed},
		{"non-base64 signature", setAuth(base(), "AWS "+exampleKey+":!!!!!!!!!!!!!!!!!!!!!!!!!!!="), "", testNow, ErrMalformed},
		{"two authorizations", withHeaders(good, "Authorization", "AWS a:b"), "", testNow, ErrMalformed},
		{"header and query", mod(func(r *Request) { r.RawQuery += "&AWSAccessKeyId=x" }), "", testNow, ErrMalformed},
		{"skewed late", good, "", testNow.Add(16 * time.Minute), ErrRequestTimeSkewed},
		{"skewed early", good, "", testNow.Add(-16 * time.Minute), ErrRequestTimeSkewed},
		{"missing date", signedWithoutDate(), "", testNow, ErrMalformed},
		{"bad date", mod(func(r *Request) { r.Headers[1].Value = "yesterday" }), "", testNow, ErrMalformed},
		{"presigned ok", presigned(exp), "", testNow, nil},
		{"presigned expired", presigned(testNow.Unix() - 1), "", testNow, ErrExpired},
		{"presigned too far", presigned(testNow.Add(8 * 24 * time.Hour).Unix()), "", testNow, ErrMalformed},
		{"presigned tampered query", func() Request {
			r := presigned(exp)
			r.RawQuery = strings.Replace(r.RawQuery, "versionId=1", "versionId=2", 1)
			return r
		}(), "", testNow, ErrSignatureMismatch},
		{"presigned tampered expires", func() Request {
			r := presigned(exp)
			r.RawQuery = strings.Replace(r.RawQuery, fmt.Sprint(exp), fmt.Sprint(exp+1), 1)
			return r
		}(), "", testNow, ErrSignatureMismatch},
		{"presigned no signature", Request{Method: "GET", RawPath: "/", RawQuery: "AWSAccessKeyId=a&Expires=1"}, "", testNow, ErrMalformed},
		{"presigned no expires", Request{Method: "GET", RawPath: "/", RawQuery: "AWSAccessKeyId=a&Signature=" + url.QueryEscape(sign("a", "b"))}, "", testNow, ErrMalformed},
		{"presigned bad expires", Request{Method: "GET", RawPath: "/", RawQuery: "AWSAccessKeyId=a&Expires=-1&Signature=" + url.QueryEscape(sign("a", "b"))}, "", testNow, ErrMalformed},
		{"presigned repeated key", func() Request { r := presigned(exp); r.RawQuery += "&AWSAccessKeyId=x"; return r }(), "", testNow, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lookupCalled := false
			lookup := func(id string) (string, error) { lookupCalled = true; return exampleLookup(id) }
			v := New(Config{Now: func() time.Time { return c.now }})
			a, err := v.Verify(&c.r, c.bucket, lookup)
			if c.want == nil {
				if err != nil || a.AccessKeyID != exampleKey {
					t.Fatalf("Verify = %+v, %v", a, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %+v, %v; want %v", a, err, c.want)
			}
			if a != nil {
				t.Fatalf("Auth %+v with an error", a)
			}
			if lookupCalled && !errors.Is(c.want, ErrSignatureMismatch) && !errors.Is(c.want, ErrUnknownKey) {
				t.Fatalf("lookup called for a request failing with %v", err)
			}
		})
	}
}

func ptr(r Request) *Request { return &r }

// signedWithoutDate signs a request that has no date header at all.
func signedWithoutDate() Request {
	r := Request{Method: "GET", RawPath: "/b/k", Headers: hs("Host", "h")}
	signHeader(&r, "", exampleKey, exampleSecret)
	return r
}

// TestDateFormats: the request date may be RFC 1123 (GMT or numeric zone),
// RFC 850 or ANSI C, in Date or x-amz-date.
func TestDateFormats(t *testing.T) {
	for _, d := range []string{
		testNow.Format(time.RFC1123),
		testNow.Format(time.RFC1123Z),
		testNow.Format(time.RFC850),
		testNow.Format(time.ANSIC),
	} {
		for _, name := range []string{"Date", "X-Amz-Date"} {
			r := Request{Method: "GET", RawPath: "/", Headers: hs("Host", "h", name, d)}
			signHeader(&r, "b", exampleKey, exampleSecret)
			if _, err := testVerifier().Verify(&r, "b", exampleLookup); err != nil {
				t.Errorf("%s: %s: %v", name, d, err)
			}
		}
	}
}

func TestIs(t *testing.T) {
	for _, c := range []struct {
		r    Request
		want bool
	}{
		{Request{Headers: hs("Authorization", "AWS a:b")}, true},
		{Request{Headers: hs("authorization", "AWS4-HMAC-SHA256 Credential=a")}, false},
		{Request{RawQuery: "AWSAccessKeyId=a&Expires=1&Signature=x"}, true},
		{Request{RawQuery: "X-Amz-Algorithm=AWS4-HMAC-SHA256&Signature=x"}, false},
		{Request{RawQuery: "Expires=1"}, false},
		{Request{}, false},
	} {
		if got := Is(&c.r); got != c.want {
			t.Errorf("Is(%+v) = %v", c.r, got)
		}
	}
}

// TestResourceRules: sub-resource names are matched case-sensitively and
// raw; values are percent-decoded with '+' and invalid escapes kept; an
// empty path is "/".
func TestResourceRules(t *testing.T) {
	for _, c := range []struct{ bucket, path, query, want string }{
		{"", "", "", "/"},
		{"b", "", "", "/b/"},
		{"b", "/k", "ACL&acl&%61cl&aclx", "/b/k?acl"},
		{"", "/k", "versionId=a+b%2Bc%zz%4&uploadId=%41", "/k?uploadId=A&versionId=a+b+c%zz%4"},
		{"", "/k", "versions&versionId=2&versions=", "/k?versionId=2&versions&versions="},
		{"", "/k", "&&=&acl=", "/k?acl="},
	} {
		if got := string(appendResource(nil, c.bucket, c.path, c.query)); got != c.want {
			t.Errorf("resource(%q, %q, %q) = %q, want %q", c.bucket, c.path, c.query, got, c.want)
		}
	}
}
