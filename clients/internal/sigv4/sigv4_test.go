package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var update = flag.Bool("update", false, "rewrite the generated sections of testdata/k2v-*.txt")

// vector is one golden file: "-- name --" sections, the first of which,
// "input", holds "key value" lines.
type vector struct {
	comment  string
	sections map[string]string
	order    []string

	accessKey, secretKey, region, service string
	time                                  time.Time
	req                                   Request
}

func readVector(t *testing.T, path string) *vector {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := &vector{sections: map[string]string{}}
	var cur string
	var body strings.Builder
	flush := func() {
		if cur != "" {
			v.sections[cur] = strings.TrimSuffix(body.String(), "\n")
			v.order = append(v.order, cur)
		}
		body.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "-- "); ok && strings.HasSuffix(name, " --") {
			flush()
			cur = strings.TrimSuffix(name, " --")
			continue
		}
		if cur == "" {
			v.comment += line + "\n"
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()

	for _, line := range strings.Split(v.sections["input"], "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "access_key":
			v.accessKey = val
		case "secret_key":
			v.secretKey = val
		case "region":
			v.region = val
		case "service":
			v.service = val
		case "time":
			v.time, err = time.Parse(AmzDateFormat, val)
			if err != nil {
				t.Fatal(err)
			}
		case "method":
			v.req.Method = val
		case "path":
			v.req.Path = val
		case "query":
			v.req.RawQuery = val
		case "header":
			name, value, _ := strings.Cut(val, ":")
			v.req.Headers = append(v.req.Headers, Header{name, value})
		case "payload_hash":
			v.req.PayloadHash = val
		default:
			t.Fatalf("%s: unknown input key %q", path, key)
		}
	}
	return v
}

func (v *vector) signer() *Signer { return New(v.accessKey, v.secretKey, v.region, v.service) }

// computed returns every generated section for v.
func (v *vector) computed() map[string]string {
	s := v.signer()
	var date [16]byte
	appendAmzDate(date[:0], v.time)
	idx := sortHeaders(nil, v.req.Headers)
	var q queryScratch
	creq := appendCanonicalRequest(nil, &q, &v.req, idx, date[:])
	sum := sha256Sum(creq)
	sts := appendStringToSign(nil, date[:], v.region, v.service, sum[:])
	key := s.signingKey(date[:8])
	var raw [32]byte
	for i := range raw {
		raw[i] = key.ipad[i] ^ 0x36
	}
	auth, _ := s.Sign(&v.req, v.time)
	return map[string]string{
		"canonical-request": string(creq),
		"string-to-sign":    string(sts),
		"signing-key":       hex.EncodeToString(raw[:]),
		"authorization":     auth,
	}
}

func TestGoldenVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			v := readVector(t, path)
			got := v.computed()
			generated := strings.HasPrefix(filepath.Base(path), "k2v-")
			if *update && generated {
				var out strings.Builder
				out.WriteString(v.comment)
				fmt.Fprintf(&out, "-- input --\n%s\n", v.sections["input"])
				for _, name := range []string{"canonical-request", "string-to-sign", "signing-key", "authorization"} {
					fmt.Fprintf(&out, "-- %s --\n%s\n", name, got[name])
				}
				if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, ok := v.sections["authorization"]; !ok {
				t.Fatalf("no authorization section (run with -update for k2v-* files)")
			}
			for _, name := range v.order {
				if name == "input" {
					continue
				}
				want := v.sections[name]
				if got[name] != want {
					t.Errorf("%s:\ngot:\n%s\nwant:\n%s", name, got[name], want)
				}
			}
		})
	}
}

// awsSign signs the same request with aws-sdk-go-v2's signer. It is given
// exactly the headers we sign, no Content-Length (which it would sign),
// and the path through URL.RawPath so that it sees the wire form.
func awsSign(t *testing.T, accessKey, secretKey, region, service string, r *Request, tm time.Time) string {
	t.Helper()
	path := r.Path
	if path == "" {
		path = "/"
	}
	decoded, err := url.PathUnescape(path)
	if err != nil {
		t.Fatalf("PathUnescape(%q): %v", path, err)
	}
	u := &url.URL{Scheme: "http", Path: decoded, RawPath: path, RawQuery: r.RawQuery}
	req := &http.Request{Method: r.Method, URL: u, Header: http.Header{}}
	for _, h := range r.Headers {
		if h.Name == "host" {
			u.Host = h.Value
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	if got := u.EscapedPath(); got != path {
		t.Fatalf("EscapedPath = %q, want %q", got, path)
	}
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	err = awsv4.NewSigner().SignHTTP(context.Background(), creds, req, r.PayloadHash, service, region, tm)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := req.Header.Get("X-Amz-Date"), tm.UTC().Format(AmzDateFormat); got != want {
		t.Fatalf("aws X-Amz-Date = %q, want %q", got, want)
	}
	return req.Header.Get("Authorization")
}

func TestMatchesAWSSigner(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			v := readVector(t, path)
			got, date := v.signer().Sign(&v.req, v.time)
			want := awsSign(t, v.accessKey, v.secretKey, v.region, v.service, &v.req, v.time)
			if got != want {
				t.Errorf("Sign:\n got %s\nwant %s", got, want)
			}
			if want := v.time.UTC().Format(AmzDateFormat); date != want {
				t.Errorf("amzDate = %q, want %q", date, want)
			}
		})
	}
}

// TestMatchesAWSSignerRandom signs K2V-shaped requests with random keys
// (any bytes, percent-encoded as the SDK sends them) with both signers.
func TestMatchesAWSSignerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aZ09-_.~/%+ &=?#é\x00\xff\x7f:;,!*'()@$")
	randKey := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	enc := func(s string) string { return string(appendURIEncode(nil, s, false)) }
	methods := []string{"GET", "PUT", "DELETE", "POST"}
	tm := time.Date(2026, 3, 9, 23, 59, 59, 0, time.UTC)
	s := New("GK31c2f218a2e44f485b94239e", "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835", "garage", "k2v")
	for i := range 500 {
		r := &Request{
			Method:      methods[rng.IntN(len(methods))],
			Path:        "/bucket-" + fmt.Sprint(i%7) + "/" + enc("x"+randKey()),
			RawQuery:    "sort_key=" + enc(randKey()) + "&causality_token=" + enc(randKey()) + "&timeout=" + fmt.Sprint(rng.IntN(600)),
			PayloadHash: PayloadHash([]byte(randKey())),
			Headers: []Header{
				{"x-amz-content-sha256", ""},
				{"host", "127.0.0.1:3904"},
			},
		}
		r.Headers[0].Value = r.PayloadHash
		if rng.IntN(2) == 0 {
			r.Headers = append(r.Headers, Header{"x-garage-causality-token", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"})
		}
		got, _ := s.Sign(r, tm)
		want := awsSign(t, "GK31c2f218a2e44f485b94239e", "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835", "garage", "k2v", r, tm)
		if got != want {
			t.Fatalf("request %+v:\n got %s\nwant %s", r, got, want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"empty", "", ""},
		{"bare keyword", "search", "search="},
		{"empty value", "sort_key=", "sort_key="},
		{"sorted", "b=2&a=1", "a=1&b=2"},
		{"plus is space", "sort_key=a+b", "sort_key=a%20b"},
		{"encoded plus", "sort_key=a%2Bb", "sort_key=a%2Bb"},
		{"slash encoded", "prefix=a/b", "prefix=a%2Fb"},
		{"lowercase hex upcased", "prefix=%c3%a9", "prefix=%C3%A9"},
		{"unreserved decoded", "prefix=%7E%41", "prefix=~A"},
		{"invalid escape kept", "prefix=100%", "prefix=100%25"},
		{"invalid escape hex", "prefix=%zz", "prefix=%25zz"},
		{"empty segments", "&a=1&&b=2&", "a=1&b=2"},
		{"repeated", "a=2&a=1", "a=1&a=2"},
		{"sorted by pair", "poll_range&sort_key=x", "poll_range=&sort_key=x"},
		{"name before value", "a-b=1&a=2", "a=2&a-b=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q queryScratch
			if got := string(q.appendCanonicalQuery(nil, tt.raw)); got != tt.want {
				t.Errorf("canonical query of %q = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/b/pk", "/b/pk"},
		{"/b/a%2Fb", "/b/a%252Fb"},
		{"/b/a%20b~c", "/b/a%2520b~c"},
		{"/b/a b", "/b/a%20b"},
		{"/b/./..", "/b/./.."},
	}
	for _, tt := range tests {
		if got := string(appendURIEncode(nil, tt.path, true)); got != tt.want {
			t.Errorf("canonical URI of %q = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestKeyCachePerDay(t *testing.T) {
	s := New("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garage", "k2v")
	k1 := s.signingKey([]byte("20150830"))
	if k2 := s.signingKey([]byte("20150830")); k2 != k1 {
		t.Error("same day: key re-derived")
	}
	k3 := s.signingKey([]byte("20150831"))
	if k3 == k1 || k3.ipad == k1.ipad {
		t.Error("new day: key not re-derived")
	}
	// A request signed on the next day must match a fresh signer's.
	r := &Request{Method: "GET", Path: "/b", Headers: []Header{{"host", "h"}}, PayloadHash: EmptyPayloadHash}
	day2 := time.Date(2015, 8, 31, 0, 0, 1, 0, time.UTC)
	got, _ := s.Sign(r, day2)
	want, _ := New("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garage", "k2v").Sign(r, day2)
	if got != want {
		t.Errorf("cached key signature %s, want %s", got, want)
	}
}

func TestAmzDateUTC(t *testing.T) {
	tm := time.Date(2026, 1, 2, 3, 4, 5, 999, time.FixedZone("X", -5*3600))
	if got, want := string(appendAmzDate(nil, tm)), "20260102T080405Z"; got != want {
		t.Errorf("appendAmzDate = %q, want %q", got, want)
	}
}

func TestPayloadHash(t *testing.T) {
	if got := PayloadHash(nil); got != EmptyPayloadHash {
		t.Errorf("PayloadHash(nil) = %s", got)
	}
	if got, want := PayloadHash([]byte("hello")), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; got != want {
		t.Errorf("PayloadHash(hello) = %s, want %s", got, want)
	}
}

func benchRequest() *Request {
	return &Request{
		Method:      "PUT",
		Path:        "/bench/partition-0042",
		RawQuery:    "sort_key=item-000123",
		PayloadHash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		Headers: []Header{
			{"host", "127.0.0.1:3904"},
			{"x-amz-content-sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
			{"x-garage-causality-token", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"},
		},
	}
}

func TestSignAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s := New("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garage", "k2v")
	r := benchRequest()
	tm := time.Now()
	s.Sign(r, tm) // derive the key, warm the pool
	if n := testing.AllocsPerRun(100, func() { s.Sign(r, tm) }); n > 1 {
		t.Errorf("Sign allocates %v times per call, want <= 1", n)
	}
}

func BenchmarkSign(b *testing.B) {
	s := New("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garage", "k2v")
	r := benchRequest()
	tm := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(r, tm)
	}
}

func BenchmarkSignParallel(b *testing.B) {
	s := New("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garage", "k2v")
	tm := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest()
		for pb.Next() {
			s.Sign(r, tm)
		}
	})
}

func BenchmarkAWSSigner(b *testing.B) {
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	signer := awsv4.NewSigner()
	tm := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("PUT", "http://127.0.0.1:3904/bench/partition-0042?sort_key=item-000123", nil)
		req.Header.Set("X-Amz-Content-Sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
		req.Header.Set("X-Garage-Causality-Token", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA")
		signer.SignHTTP(context.Background(), creds, req, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "k2v", "garage", tm)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
