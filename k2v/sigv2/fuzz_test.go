package sigv2

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzVerifySigV2 feeds arbitrary Authorization headers, queries, paths and
// header values to Verify: it must not panic and must fail only with one of
// the package's errors. Then it signs a request built from the same inputs
// with the test signer, in the header form and presigned, and checks that
// Verify accepts it.
func FuzzVerifySigV2(f *testing.F) {
	f.Add("AWS "+exampleKey+":bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "prefix=photos&max-keys=50", "/photos/puppy.jpg", " v ", "x y", "johnsmith", uint8(0))
	f.Add("AWS :", "AWSAccessKeyId=a&Expires=99999999999&Signature=%zz", "", "", "", "", uint8(1))
	f.Add("AWS a:b:c", "acl&uploadId=1%2&versionId=&Expires=-1", "/%C3%A7/", "\t", "%", "b.c", uint8(2))
	f.Add("AWS4-HMAC-SHA256 Credential=a", "AWSAccessKeyId=&Signature=&Signature=", "?#", "a,b", "+", "", uint8(3))
	f.Add("aws  k:"+strings.Repeat("A", 28), "x-amz-date=1&content-type=a&AWSAccessKeyId=k", "/a b", "\xff", "\x00", "\u212a", uint8(4))
	methods := []string{"GET", "PUT", "POST", "DELETE", "HEAD"}
	f.Fuzz(func(t *testing.T, authz, query, path, hval, sub, bucket string, sel uint8) {
		v := testVerifier()
		method := methods[int(sel)%len(methods)]
		date := testNow.Format(time.RFC1123)
		if sel&0x80 != 0 {
			date = "junk " + hval
		}

		// 1. Arbitrary input.
		r := Request{Method: method, RawPath: path, RawQuery: query, Headers: hs(
			"Host", "h", "Date", date, "X-Amz-Meta-F", hval, "Content-Type", sub)}
		if sel&0x40 != 0 {
			r.Headers = append(r.Headers, Header{Name: "Authorization", Value: authz})
		}
		a, err := v.Verify(&r, bucket, exampleLookup)
		switch {
		case err == nil:
			if a == nil || a.AccessKeyID != exampleKey {
				t.Fatalf("Verify = %+v, nil", a)
			}
		case a != nil:
			t.Fatalf("Verify = %+v, %v", a, err)
		case !errors.Is(err, ErrAnonymous) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRequestTimeSkewed) &&
			!errors.Is(err, ErrExpired) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrSignatureMismatch):
			t.Fatalf("Verify: unexpected error %v", err)
		}
		_ = Is(&r)

		// 2. Signed requests verify. The query keeps the fuzzed segments
		// that are neither sub-resources, nor authentication parameters,
		// nor (for the presigned form) possibly headers in disguise, and
		// adds sub-resources holding the fuzzed value.
		var segs []string
		for _, seg := range strings.Split(query, "&") {
			name, _, _ := strings.Cut(seg, "=")
			ln := strings.ToLower(name)
			if isTestSubResource(name) || name == qAccessKey || name == qSignature || name == qExpires ||
				strings.Contains(name, "%") || strings.HasPrefix(ln, "x-amz-") || strings.HasPrefix(ln, "content-") ||
				name == "X-Amz-Algorithm" {
				continue
			}
			segs = append(segs, seg)
		}
		segs = append(segs, "versionId="+url.QueryEscape(sub), "acl", "response-content-type="+url.PathEscape(sub))
		if sel&1 != 0 {
			segs[0], segs[len(segs)-1] = segs[len(segs)-1], segs[0]
		}
		signedQuery := strings.Join(segs, "&")
		if strings.ContainsAny(bucket, "/?") {
			bucket = ""
		}

		hr := Request{Method: method, RawPath: path, RawQuery: signedQuery, Headers: hs(
			"Host", "h", "Date", testNow.Format(time.RFC1123), "X-Amz-Meta-F", hval, "x-amz-meta-f", sub, "Content-Type", sub)}
		signHeader(&hr, bucket, exampleKey, exampleSecret)
		if _, err := v.Verify(&hr, bucket, exampleLookup); err != nil {
			t.Fatalf("header-signed %+v: %v (test signer: %q)", hr, err, testStringToSign(&hr, bucket, ""))
		}

		pr := Request{Method: method, RawPath: path, RawQuery: signedQuery, Headers: hs(
			"X-Amz-Meta-F", hval, "Content-Type", sub)}
		presign(&pr, bucket, exampleKey, exampleSecret, testNow.Add(time.Duration(sel)*time.Minute+time.Second).Unix())
		if _, err := v.Verify(&pr, bucket, exampleLookup); err != nil {
			t.Fatalf("presigned %+v: %v (test signer: %q)", pr, err,
				testStringToSign(&pr, bucket, fmt.Sprint(testNow.Add(time.Duration(sel)*time.Minute+time.Second).Unix())))
		}
	})
}

func isTestSubResource(name string) bool {
	for _, s := range strings.Fields(`acl cors delete lifecycle location logging notification partNumber
		policy requestPayment response-cache-control response-content-disposition
		response-content-encoding response-content-language response-content-type
		response-expires restore tagging torrent uploadId uploads versionId versioning versions website`) {
		if s == name {
			return true
		}
	}
	return false
}
