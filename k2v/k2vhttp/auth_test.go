package k2vhttp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/grangeio/grange/k2v"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// mustBeMissing checks that an item was not written.
func (ts *testServer) mustBeMissing(what, pk, sk string) {
	ts.t.Helper()
	r := ts.do("GET", itemPath(pk, sk), nil)
	if r.status != 404 {
		ts.t.Errorf("%s: item %s/%s exists (%d %s), want nothing stored", what, pk, sk, r.status, r.body)
	}
}

// signedReq builds a request signed for the test key with s's overrides
// (zero fields: the harness defaults).
func (ts *testServer) signedReq(method, path string, body []byte, s signing, headers ...string) *http.Request {
	ts.t.Helper()
	if s.id == "" {
		s.id, s.secret = ts.key.ID, ts.key.Secret
	}
	if s.region == "" {
		s.region = ts.region
	}
	if s.service == "" {
		s.service = "k2v"
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	if s.payload == "" {
		s.payload = hexSHA256(body)
	}
	req := ts.request(method, path, body, headers...)
	ts.signAs(req, s)
	return req
}

// TestAuthAnonymous: no Authorization header and no presigned parameters
// → 403 AccessDenied (§3.1), and nothing is written.
func TestAuthAnonymous(t *testing.T) {
	ts := startServer(t)
	for _, m := range []struct{ method, path, body string }{
		{"GET", "/app/pk?sort_key=s", ""},
		{"PUT", "/app/pk?sort_key=s", "v"},
		{"DELETE", "/app/pk?sort_key=s", ""},
		{"GET", "/app", ""},
		{"POST", "/app", `[{"pk":"pk","sk":"s","v":"dg=="}]`},
		{"POST", "/app?search", `[{"partitionKey":"pk"}]`},
		{"SEARCH", "/app", `[{"partitionKey":"pk"}]`},
		{"POST", "/app?delete", `[{"partitionKey":"pk"}]`},
		{"POST", "/app/pk?poll_range", `{}`},
		{"GET", "/nosuchbucket/pk?sort_key=s", ""},
	} {
		// even with X-Amz-Date and a content hash, no Authorization is anonymous
		r := ts.send(ts.request(m.method, m.path, []byte(m.body),
			"X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"), "X-Amz-Content-Sha256", hexSHA256([]byte(m.body))))
		wantError(t, m.method+" "+m.path, r, 403, "AccessDenied")
	}
	ts.mustBeMissing("anonymous PUT", "pk", "s")
}

// TestAuthCredentials checks the credential and scope checks of §3.1.
func TestAuthCredentials(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	deleted := ts.newKey(k2v.Perm{Read: true, Write: true})
	if err := ts.catalog.DeleteKey(deleted.ID); err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().Add(-48 * time.Hour).UTC().Format("20060102")
	tests := []struct {
		name   string
		s      signing
		edit   func(*http.Request)
		status int
		code   string
	}{
		{name: "valid", status: 200},
		{name: "region us-east-1", s: signing{region: "us-east-1"}, status: 200},
		{name: "region auto", s: signing{region: "auto"}, status: 200},
		{name: "unknown key", s: signing{id: "GK000000000000000000000000", secret: ts.key.Secret}, status: 403, code: "AccessDenied"},
		{name: "deleted key", s: signing{id: deleted.ID, secret: deleted.Secret}, status: 403, code: "AccessDenied"},
		{name: "wrong secret", s: signing{id: ts.key.ID, secret: strings.Repeat("0", 64)}, status: 403, code: "AccessDenied"},
		{name: "other region", s: signing{region: "us-west-2"}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "other service", s: signing{service: "s3"}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "scope date differs from X-Amz-Date", edit: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			day := r.Header.Get("X-Amz-Date")[:8]
			r.Header.Set("Authorization", strings.Replace(a, "/"+day+"/", "/"+yesterday+"/", 1))
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "scope terminator", edit: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "tampered signature", edit: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		}, status: 403, code: "AccessDenied"},
		{name: "tampered query", edit: func(r *http.Request) { r.URL.RawQuery = "sort_key=t" }, status: 403, code: "AccessDenied"},
		{name: "missing X-Amz-Date", edit: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, status: 400, code: "InvalidRequest"},
		{name: "missing X-Amz-Content-Sha256", edit: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, status: 400, code: "InvalidRequest"},
		{name: "unsigned x-amz header", edit: func(r *http.Request) { r.Header.Set("X-Amz-Meta-Extra", "1") }, status: 400, code: "InvalidRequest"},
		{name: "unsigned x-amz header upper case", edit: func(r *http.Request) { r.Header["X-AMZ-SECURITY-TOKEN"] = []string{"t"} }, status: 400, code: "InvalidRequest"},
		{name: "host not signed", edit: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "SignedHeaders=host;", "SignedHeaders=", 1))
		}, status: 400, code: "InvalidRequest"},
		{name: "signed header absent", edit: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "SignedHeaders=", "SignedHeaders=a-missing-header;", 1))
		}, status: 400, code: "InvalidRequest"},
		// unsigned non-x-amz headers are allowed
		{name: "unsigned Accept", edit: func(r *http.Request) { r.Header.Set("Accept", "application/json") }, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ts.signedReq("GET", "/app/pk?sort_key=s", nil, tt.s)
			if tt.edit != nil {
				tt.edit(req)
			}
			r := ts.send(req)
			if tt.status == 200 {
				if r.status != 200 || decodeValues(t, r.body) != `["v"]` {
					t.Errorf("status %d %s, want 200 [v]", r.status, r.body)
				}
				return
			}
			wantError(t, tt.name, r, tt.status, tt.code)
		})
	}
}

// TestAuthClockSkew checks the date window. grange deliberately accepts
// X-Amz-Date within ±15 minutes of its clock (this overrides the 24 h rule
// of §3.1): 20 minutes off in either direction is refused with 400
// InvalidRequest.
func TestAuthClockSkew(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		skew   time.Duration
		status int
	}{
		{-20 * time.Minute, 400},
		{20 * time.Minute, 400},
		{-25 * time.Hour, 400},
		{-10 * time.Minute, 204},
		{10 * time.Minute, 204},
	}
	for _, tt := range tests {
		sk := fmt.Sprintf("skew%v", tt.skew)
		req := ts.signedReq("PUT", itemPath("pk", sk), []byte("v"), signing{at: time.Now().Add(tt.skew)})
		r := ts.send(req)
		if tt.status == 204 {
			wantStatus(t, sk, r, 204)
			continue
		}
		wantError(t, sk, r, 400, "InvalidRequest")
		ts.mustBeMissing(sk, "pk", sk)
	}
}

// TestAuthPayloadHash checks X-Amz-Content-Sha256 (§3.2).
func TestAuthPayloadHash(t *testing.T) {
	ts := startServer(t)
	// mismatch on InsertItem: 400 InvalidDigest, nothing stored
	req := ts.signedReq("PUT", itemPath("pk", "a"), []byte("signed"), signing{})
	req.Body = io.NopCloser(strings.NewReader("sent!!"))
	r := ts.send(req)
	wantError(t, "PUT with wrong hash", r, 400, "InvalidDigest")
	ts.mustBeMissing("PUT with wrong hash", "pk", "a")

	// mismatch on InsertBatch
	body := []byte(`[{"pk":"pk","sk":"b","v":"dg=="}]`)
	req = ts.signedReq("POST", "/app", body, signing{payload: hexSHA256([]byte("[]"))})
	r = ts.send(req)
	wantError(t, "InsertBatch with wrong hash", r, 400, "InvalidDigest")
	ts.mustBeMissing("InsertBatch with wrong hash", "pk", "b")

	// the hash of the empty body for a body-less request
	r = ts.send(ts.signedReq("GET", "/app", nil, signing{payload: emptySHA256}))
	wantStatus(t, "empty body hash", r, 200)

	// UNSIGNED-PAYLOAD: no verification
	r = ts.send(ts.signedReq("PUT", itemPath("pk", "c"), []byte("unsigned"), signing{payload: "UNSIGNED-PAYLOAD"}))
	wantStatus(t, "UNSIGNED-PAYLOAD", r, 204)
	if got, _ := ts.read("pk", "c"); got != `["unsigned"]` {
		t.Errorf("after UNSIGNED-PAYLOAD PUT: %s, want [unsigned]", got)
	}

	// other values → 400
	for _, p := range []string{"STREAMING-UNSIGNED-PAYLOAD", "not-a-hash", strings.ToUpper(hexSHA256([]byte("x"))), "unsigned-payload"} {
		r = ts.send(ts.signedReq("PUT", itemPath("pk", "d"), []byte("x"), signing{payload: p}))
		if r.status != 400 {
			t.Errorf("X-Amz-Content-Sha256 %q: status %d, want 400", p, r.status)
		}
		ts.mustBeMissing(p, "pk", "d")
	}
}

// TestAuthPresigned checks query-string authentication (§3.3).
func TestAuthPresigned(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "presigned", "")
	presign := func(query string, at time.Time) string {
		req, err := http.NewRequest("GET", ts.url+"/app/pk?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: ts.key.ID, SecretAccessKey: ts.key.Secret},
			req, "UNSIGNED-PAYLOAD", "k2v", ts.region, at)
		if err != nil {
			t.Fatal(err)
		}
		return uri
	}
	get := func(uri string, headers ...string) *response {
		req, err := http.NewRequest("GET", uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return ts.send(req)
	}

	r := get(presign("sort_key=s&X-Amz-Expires=300", time.Now()))
	if r.status != 200 || decodeValues(t, r.body) != `["presigned"]` {
		t.Errorf("presigned GET: %d %s, want 200 [presigned]", r.status, r.body)
	}
	// Accept is not signed: it may be added, and is honoured
	r = get(presign("sort_key=s&X-Amz-Expires=300", time.Now()), "Accept", "application/octet-stream")
	if r.status != 200 || string(r.body) != "presigned" {
		t.Errorf("presigned binary GET: %d %q, want 200 presigned", r.status, r.body)
	}
	// expired: signed 2 hours ago, valid for 60 s
	r = get(presign("sort_key=s&X-Amz-Expires=60", time.Now().Add(-2*time.Hour)))
	if r.status != 403 {
		t.Errorf("expired presigned GET: %d %s, want 403", r.status, r.body)
	}
	checkErrorBody(t, "expired presigned GET", r)
	// X-Amz-Expires above 7 days
	r = get(presign("sort_key=s&X-Amz-Expires=604801", time.Now()))
	if r.status != 400 {
		t.Errorf("presigned GET with X-Amz-Expires=604801: %d %s, want 400", r.status, r.body)
	}
	// a modified presigned URL
	uri := presign("sort_key=s&X-Amz-Expires=300", time.Now())
	r = get(strings.Replace(uri, "sort_key=s", "sort_key=t", 1))
	wantError(t, "tampered presigned GET", r, 403, "AccessDenied")
}

// chunkSigner builds aws-chunked bodies on the test side, from the AWS
// documentation (a copy of the sigv4 tests' helper).
type chunkSigner struct {
	key         []byte
	date, scope string
	prev        string // hex signature of the previous chunk; the seed first
}

func refHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func refSigningKey(secret, date, region, service string) []byte {
	k := []byte("AWS4" + secret)
	for _, s := range []string{date, region, service, "aws4_request"} {
		k = refHMAC(k, s)
	}
	return k
}

func (s *chunkSigner) chunkSig(data []byte) string {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.date + "\n" + s.scope + "\n" + s.prev + "\n" + emptySHA256 + "\n" + hexSHA256(data)
	s.prev = hex.EncodeToString(refHMAC(s.key, sts))
	return s.prev
}

// trailerSig signs the trailing headers of a signed aws-chunked body.
func (s *chunkSigner) trailerSig(canonicalTrailers string) string {
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + s.date + "\n" + s.scope + "\n" + s.prev + "\n" + hexSHA256([]byte(canonicalTrailers))
	return hex.EncodeToString(refHMAC(s.key, sts))
}

const (
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	testTrailerName        = "x-amz-checksum-crc32"
	testTrailerValue       = "sOO8/Q=="
)

// buildChunked encodes chunks, then the final empty chunk and the trailer
// section, in the aws-chunked format of mode.
func buildChunked(s *chunkSigner, mode string, chunks [][]byte) []byte {
	var b bytes.Buffer
	for _, c := range append(chunks, nil) {
		fmt.Fprintf(&b, "%x", len(c))
		if mode != streamingUnsignedTrail {
			b.WriteString(";chunk-signature=" + s.chunkSig(c))
		}
		b.WriteString("\r\n")
		if len(c) > 0 {
			b.Write(c)
			b.WriteString("\r\n")
		}
	}
	if mode != streamingSigned {
		b.WriteString(testTrailerName + ":" + testTrailerValue + "\r\n")
	}
	if mode == streamingSignedTrailer {
		b.WriteString("x-amz-trailer-signature:" + s.trailerSig(testTrailerName+":"+testTrailerValue+"\n") + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// chunkedPut sends an InsertItem whose body is aws-chunked in mode; the
// corrupt function may alter the encoded body.
func (ts *testServer) chunkedPut(path, mode string, chunks [][]byte, corrupt func([]byte)) *response {
	ts.t.Helper()
	decoded := bytes.Join(chunks, nil)
	// a body of the right length (signatures have a fixed length), so that
	// the signed Content-Length is the real one
	placeholder := buildChunked(&chunkSigner{key: []byte("k"), prev: "seed"}, mode, chunks)
	headers := []string{"Content-Encoding", "aws-chunked", "X-Amz-Decoded-Content-Length", fmt.Sprint(len(decoded))}
	if mode != streamingSigned {
		headers = append(headers, "X-Amz-Trailer", testTrailerName)
	}
	req := ts.request("PUT", path, placeholder, headers...)
	at := time.Now().UTC()
	ts.signAs(req, signing{id: ts.key.ID, secret: ts.key.Secret, region: ts.region, service: "k2v", at: at, payload: mode})
	_, seed, ok := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if !ok {
		ts.t.Fatal("no signature in Authorization")
	}
	day := at.Format("20060102")
	s := &chunkSigner{key: refSigningKey(ts.key.Secret, day, ts.region, "k2v"), date: at.Format("20060102T150405Z"),
		scope: day + "/" + ts.region + "/k2v/aws4_request", prev: seed}
	body := buildChunked(s, mode, chunks)
	if len(body) != len(placeholder) {
		ts.t.Fatalf("chunked body of %d bytes, placeholder of %d", len(body), len(placeholder))
	}
	if corrupt != nil {
		corrupt(body)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return ts.send(req)
}

// TestAuthStreaming checks aws-chunked bodies (§3.2): signed chunk by
// chunk, with or without signed trailers, or unsigned with trailers.
func TestAuthStreaming(t *testing.T) {
	ts := startServer(t)
	chunks := [][]byte{bytes.Repeat([]byte("a"), 1000), []byte("\r\n0;chunk-signature=looks like framing\r\n"), {0, 1, 2, 255}}
	for _, mode := range []string{streamingSigned, streamingSignedTrailer, streamingUnsignedTrail} {
		r := ts.chunkedPut(itemPath("pk", mode), mode, chunks, nil)
		wantStatus(t, mode+" PUT", r, 204)
		r = ts.do("GET", itemPath("pk", mode), nil, "Accept", "application/octet-stream")
		if r.status != 200 || !bytes.Equal(r.body, bytes.Join(chunks, nil)) {
			t.Errorf("after %s PUT: %d, %d bytes; want 200 and the %d decoded bytes", mode, r.status, len(r.body), len(bytes.Join(chunks, nil)))
		}
	}
	// an empty value: only the final chunk
	r := ts.chunkedPut(itemPath("pk", "empty"), streamingSigned, nil, nil)
	wantStatus(t, "chunked empty PUT", r, 204)
	if got, _ := ts.read("pk", "empty"); got != `[""]` {
		t.Errorf("after empty chunked PUT: %s, want [\"\"]", got)
	}
	flipHex := func(b []byte, i int) {
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
	}
	for _, tt := range []struct {
		name, mode string
		corrupt    func([]byte)
	}{
		{"data byte", streamingSigned, func(b []byte) {
			i := bytes.Index(b, []byte("\r\naaaa")) + 2 // the first data byte
			b[i] = 'b'
		}},
		{"chunk signature", streamingSigned, func(b []byte) {
			flipHex(b, bytes.Index(b, []byte("chunk-signature="))+len("chunk-signature="))
		}},
		{"final chunk signature", streamingSigned, func(b []byte) {
			flipHex(b, bytes.LastIndex(b, []byte("chunk-signature="))+len("chunk-signature="))
		}},
		{"trailer signature", streamingSignedTrailer, func(b []byte) {
			flipHex(b, bytes.Index(b, []byte("x-amz-trailer-signature:"))+len("x-amz-trailer-signature:"))
		}},
		{"trailer value", streamingSignedTrailer, func(b []byte) {
			b[bytes.Index(b, []byte(testTrailerValue))] = 'X'
		}},
	} {
		r := ts.chunkedPut(itemPath("pk", "corrupt "+tt.name), tt.mode, chunks, tt.corrupt)
		wantError(t, "corrupted "+tt.name, r, 400, "InvalidDigest")
		ts.mustBeMissing("corrupted "+tt.name, "pk", "corrupt "+tt.name)
	}
}

// TestPermissions checks §3.5 with keys of each permission.
func TestPermissions(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	ro := ts.newKey(k2v.Perm{Read: true})
	wo := ts.newKey(k2v.Perm{Write: true})
	none := ts.newKey(k2v.Perm{})
	type op struct {
		name, method, path, body string
		write                    bool
		ok                       int
	}
	ops := []op{
		{"ReadItem", "GET", "/app/pk?sort_key=s", "", false, 200},
		{"PollItem", "GET", "/app/pk?sort_key=s&timeout=1&causality_token=" + emptyToken, "", false, 200},
		{"ReadIndex", "GET", "/app", "", false, 200},
		{"ReadBatch", "POST", "/app?search", `[{"partitionKey":"pk"}]`, false, 200},
		{"ReadBatch SEARCH", "SEARCH", "/app", `[{"partitionKey":"pk"}]`, false, 200},
		{"InsertItem", "PUT", "/app/pk?sort_key=w", "x", true, 204},
		{"DeleteItem", "DELETE", "/app/pk?sort_key=w", "", true, 204},
		{"InsertBatch", "POST", "/app", `[{"pk":"pk","sk":"w","v":"eA=="}]`, true, 204},
		{"DeleteBatch", "POST", "/app?delete", `[{"partitionKey":"pk","start":"w","singleItem":true}]`, true, 200},
		{"PollRange", "POST", "/app/pk?poll_range", `{}`, true, 200},
		{"PollRange SEARCH", "SEARCH", "/app/pk?poll_range", `{}`, true, 200},
	}
	for _, o := range ops {
		for _, k := range []struct {
			name string
			key  *k2v.Key
			ok   bool
		}{{"read-only", ro, !o.write}, {"write-only", wo, o.write}, {"no permission", none, false}} {
			what := k.name + " " + o.name
			r := ts.doAs(k.key, o.method, o.path, []byte(o.body))
			if k.ok {
				wantStatus(t, what, r, o.ok)
				continue
			}
			wantError(t, what, r, 403, "AccessDenied")
		}
	}
	// the refused writes changed nothing
	if got, _ := ts.read("pk", "s"); got != `["v"]` {
		t.Errorf("after refused writes: %s, want [v]", got)
	}
}

// TestBucketResolution checks §3.4.
func TestBucketResolution(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "global", "")

	// by 64-hex-digit id
	r := ts.do("GET", "/"+ts.bucket.ID.String()+"/pk?sort_key=s", nil)
	if r.status != 200 || decodeValues(t, r.body) != `["global"]` {
		t.Errorf("GET by bucket id: %d %s", r.status, r.body)
	}
	// unknown: 404 NoSuchBucket, after the signature was verified
	for _, name := range []string{"nosuchbucket", strings.Repeat("0", 64), strings.Repeat("z", 64)} {
		r = ts.do("GET", "/"+name+"/pk?sort_key=s", nil)
		wantError(t, "unknown bucket "+name, r, 404, "NoSuchBucket")
	}
	r = ts.send(ts.signedReq("GET", "/nosuchbucket/pk?sort_key=s", nil, signing{id: ts.key.ID, secret: strings.Repeat("0", 64)}))
	wantError(t, "unknown bucket, bad signature", r, 403, "AccessDenied")
	r = ts.send(ts.request("GET", "/nosuchbucket/pk?sort_key=s", nil))
	wantError(t, "unknown bucket, anonymous", r, 403, "AccessDenied")

	// a key-local alias
	mine, err := ts.catalog.CreateBucket("", &k2v.LocalAliasSpec{KeyID: ts.key.ID, Alias: "mine", Allow: k2v.Perm{Read: true, Write: true}})
	if err != nil {
		t.Fatal(err)
	}
	if r := ts.do("PUT", "/mine/pk?sort_key=s", []byte("local")); r.status != 204 {
		t.Fatalf("PUT /mine: %d %s", r.status, r.body)
	}
	r = ts.do("GET", "/mine/pk?sort_key=s", nil)
	if r.status != 200 || decodeValues(t, r.body) != `["local"]` {
		t.Errorf("GET /mine: %d %s, want [local]", r.status, r.body)
	}
	r = ts.do("GET", "/"+mine.ID.String()+"/pk?sort_key=s", nil)
	if r.status != 200 || decodeValues(t, r.body) != `["local"]` {
		t.Errorf("GET by id of /mine: %d %s, want [local]", r.status, r.body)
	}
	// another key, even with permissions on the bucket, does not see the alias
	other := ts.newKey(k2v.Perm{Read: true, Write: true})
	if _, err := ts.catalog.SetPermissions(mine.ID, other.ID, k2v.Perm{Read: true}, true); err != nil {
		t.Fatal(err)
	}
	r = ts.doAs(other, "GET", "/mine/pk?sort_key=s", nil)
	wantError(t, "other key, local alias", r, 404, "NoSuchBucket")
	r = ts.doAs(other, "GET", "/"+mine.ID.String()+"/pk?sort_key=s", nil)
	if r.status != 200 || decodeValues(t, r.body) != `["local"]` {
		t.Errorf("other key, GET by id: %d %s, want [local]", r.status, r.body)
	}
	// a local alias comes before a global one of the same name
	if _, err := ts.catalog.CreateBucket("", &k2v.LocalAliasSpec{KeyID: other.ID, Alias: "app", Allow: k2v.Perm{Read: true, Write: true}}); err != nil {
		t.Fatal(err)
	}
	r = ts.doAs(other, "GET", "/app/pk?sort_key=s", nil)
	wantError(t, "other key, local alias app shadows global app", r, 404, "NoSuchKey")
	if r := ts.doAs(other, "PUT", "/app/pk?sort_key=s", []byte("shadow")); r.status != 204 {
		t.Fatalf("other key PUT /app: %d %s", r.status, r.body)
	}
	if got, _ := ts.read("pk", "s"); got != `["global"]` {
		t.Errorf("global app after the other key's write to its local app: %s, want [global]", got)
	}
}

// TestSignatureCanonicalForms: the server rebuilds the canonical request
// from the raw path and query (§3.1), so equivalent encodings that a
// client sends as they are (the SDK signs its own canonical form) verify.
func TestSignatureCanonicalForms(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "a b", "v", "")
	for _, path := range []string{
		"/app/pk?sort_key=a+b",
		"/app/pk?sort_key=a%20b",
		"/app/pk?unknown=2&sort_key=a+b&unknown=1",
		"/app/pk?sort_key=a+b&bare&empty=",
		"/app/pk?sort_key=a+b&x=~%7E*'()!%2A%3D%26",
		"/app/pk?sort_key=a+b&x=%c3%a9&y=%C3%A9",
		"/app/pk?sort_key=a+b&X-Amz-Meta=1",
		"/app/p%6B?sort_key=a+b", // an escape of an unreserved character: a different canonical URI, the same key
		"//app/pk?sort_key=a+b",
		"/app//pk?sort_key=a+b",
	} {
		r := ts.do("GET", path, nil)
		if r.status != 200 || decodeValues(t, r.body) != `["v"]` {
			t.Errorf("GET %s: %d %s, want 200 [v]", path, r.status, r.body)
		}
	}
	// origin-form request targets, as SDKs send them
	for _, raw := range []string{"/app/pk?sort_key=a+b", "/app/p%6B?sort_key=a%20b", "/app/pk?sort_key=a+b&z=1&a=2"} {
		req, err := http.NewRequest("GET", ts.url+raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
		r := ts.sendRaw(req)
		if r.status != 200 || decodeValues(t, r.body) != `["v"]` {
			t.Errorf("origin-form GET %s: %d %s, want 200 [v]", raw, r.status, r.body)
		}
	}
	// keys with characters that are escaped twice in the canonical URI
	for _, pk := range []string{"a/b", "mailbox:INBOX", "100%", "é t", "x+y", "~._-", "!$&'()*,;=@"} {
		path := "/app/" + url.PathEscape(pk) + "?sort_key=s"
		if r := ts.do("PUT", path, []byte(pk)); r.status != 204 {
			t.Errorf("PUT %s: %d %s", path, r.status, r.body)
			continue
		}
		if got, _ := ts.read(pk, "s"); got != mustJSON([]string{pk}) {
			t.Errorf("partition %q: %s", pk, got)
		}
	}
}
