package sigv4

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// chunkSigner builds aws-chunked bodies on the test side, written from the
// AWS documentation independently of chunked.go (crypto/hmac, strings).
type chunkSigner struct {
	key         []byte
	date, scope string
	prev        string // hex signature of the previous chunk; the seed first
}

func (s *chunkSigner) chunkSig(data []byte) string {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.date + "\n" + s.scope + "\n" + s.prev + "\n" + emptyHash + "\n" + hexSHA256(data)
	s.prev = hex.EncodeToString(refHMAC(s.key, sts))
	return s.prev
}

func (s *chunkSigner) trailerSig(canonicalTrailers string) string {
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + s.date + "\n" + s.scope + "\n" + s.prev + "\n" + hexSHA256([]byte(canonicalTrailers))
	return hex.EncodeToString(refHMAC(s.key, sts))
}

// buildChunked encodes chunks (a final empty chunk is added) and trailers in
// the format of mode.
func buildChunked(mode PayloadMode, s *chunkSigner, chunks [][]byte, trailers []Header) []byte {
	var b bytes.Buffer
	for _, c := range append(chunks, nil) {
		fmt.Fprintf(&b, "%x", len(c))
		if mode != PayloadStreamingUnsignedTrailer {
			b.WriteString(";chunk-signature=" + s.chunkSig(c))
		}
		b.WriteString("\r\n")
		if len(c) > 0 {
			b.Write(c)
			b.WriteString("\r\n")
		}
	}
	var canon strings.Builder
	for _, h := range trailers {
		b.WriteString(h.Name + ":" + h.Value + "\r\n")
		canon.WriteString(h.Name + ":" + h.Value + "\n")
	}
	if mode == PayloadStreamingSignedTrailer {
		b.WriteString("x-amz-trailer-signature:" + s.trailerSig(canon.String()) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// testAuth returns an Auth as Verify would for a request signed at t0 with
// the test key and seed signature.
func testAuth(mode PayloadMode, seed string) (*Auth, *chunkSigner) {
	const scope = "20250314/garage/k2v/aws4_request"
	key := refSigningKey(testSecret, "20250314", "garage", "k2v")
	a := &Auth{AccessKeyID: testAKID, Mode: mode, Date: t0,
		signingKey: [32]byte(key), amzDate: "20250314T123045Z", scope: scope}
	decodeHex(a.seed[:], seed)
	return a, &chunkSigner{key: key, date: a.amzDate, scope: scope, prev: seed}
}

const testSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

var streamingModes = []PayloadMode{PayloadStreamingSigned, PayloadStreamingSignedTrailer, PayloadStreamingUnsignedTrailer}

func testChunks() [][]byte {
	return [][]byte{
		bytes.Repeat([]byte("a"), 100),
		[]byte("\r\n0;chunk-signature=looks like framing\r\n"),
		bytes.Repeat([]byte{0, 1, 2, 255}, 64),
	}
}

func testTrailers(mode PayloadMode) []Header {
	if mode == PayloadStreamingSigned {
		return nil
	}
	return []Header{{"x-amz-checksum-crc32", "sOO8/Q=="}}
}

// readAllChunked reads c to the end in small, odd-sized reads.
func readAllChunked(c *ChunkedReader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestChunkedAWSExample decodes the example of the AWS documentation
// ("Transferring Payload in Multiple Chunks"), through Verify, with the
// signatures published there; and checks that the test-side signer gives the
// same signatures.
func TestChunkedAWSExample(t *testing.T) {
	r := &Request{Method: "PUT", RawPath: "/examplebucket/chunkObject.txt", Headers: []Header{
		{"Host", "s3.amazonaws.com"},
		{"x-amz-date", awsDate},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
		{"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
		{"Content-Encoding", "aws-chunked"},
		{"x-amz-decoded-content-length", "66560"},
		{"Content-Length", "66824"},
	}}
	v := New(Config{Service: "s3", Region: "us-east-1", Now: fixedNow(awsTime)})
	a, err := v.Verify(r, lookupOf(awsAKID, awsSecret))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if a.Mode != PayloadStreamingSigned {
		t.Fatalf("Mode = %v", a.Mode)
	}
	if err := a.CheckPayload(nil); err == nil || errors.Is(err, ErrPayloadMismatch) {
		t.Errorf("CheckPayload in streaming mode = %v, want a caller error", err)
	}
	awsSigs := []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}
	chunks := [][]byte{bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024), nil}
	var body bytes.Buffer
	s := &chunkSigner{key: refSigningKey(awsSecret, "20130524", "us-east-1", "s3"),
		date: awsDate, scope: "20130524/us-east-1/s3/aws4_request", prev: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"}
	for i, c := range chunks {
		if got := s.chunkSig(c); got != awsSigs[i] {
			t.Errorf("test signer: chunk %d signature %s, AWS says %s", i, got, awsSigs[i])
		}
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n%s\r\n", len(c), awsSigs[i], c)
	}
	if body.Len() != 66824 {
		t.Fatalf("body is %d bytes, Content-Length says 66824", body.Len())
	}
	got, err := io.ReadAll(a.NewChunkedReader(&body))
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Errorf("read %d bytes, %v; want 66560 'a'", len(got), err)
	}
}

// TestChunkedSDKSeed signs streaming uploads with the AWS SDK signer,
// verifies them, and decodes bodies whose chunks are signed from the
// request's signature. The SDK's stream signer (whose string to sign, with
// empty headers, is the aws-chunked one) cross-checks the test signer.
func TestChunkedSDKSeed(t *testing.T) {
	for _, service := range []string{"k2v", "s3"} {
		for _, mode := range streamingModes {
			req, err := http.NewRequest("PUT", testOrigin+"/bucket/pk?sort_key=big", nil)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(testChunks(), nil)
			req.Header.Set("Content-Encoding", "aws-chunked")
			req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(want)))
			if mode != PayloadStreamingSigned {
				req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			}
			sdkSign(t, req, service, testRegion, mode.String(), t0)
			r := wireRequest(t, req)
			a, err := newTestVerifier(service, t0).Verify(r, testLookup)
			if err != nil {
				t.Fatalf("%s/%s: Verify = %v", service, mode, err)
			}
			if a.Mode != mode {
				t.Fatalf("%s/%s: Mode = %s", service, mode, a.Mode)
			}
			authz, _ := header(r.Headers, "authorization")
			_, seed, _ := strings.Cut(authz, "Signature=")
			seedBytes, _ := hex.DecodeString(seed)

			ours := &chunkSigner{key: refSigningKey(testSecret, "20250314", testRegion, service),
				date: "20250314T123045Z", scope: "20250314/" + testRegion + "/" + service + "/aws4_request", prev: seed}
			if mode != PayloadStreamingUnsignedTrailer {
				ss := v4.NewStreamSigner(aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}, service, testRegion, seedBytes)
				check := *ours
				for _, c := range append(testChunks(), nil) {
					sig, err := ss.GetSignature(context.Background(), nil, c, t0)
					if err != nil {
						t.Fatal(err)
					}
					if got := check.chunkSig(c); got != hex.EncodeToString(sig) {
						t.Fatalf("test signer %s, SDK stream signer %x", got, sig)
					}
				}
			}
			body := buildChunked(mode, ours, testChunks(), testTrailers(mode))
			c := a.NewChunkedReader(iotest.OneByteReader(bytes.NewReader(body)))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s: read %q, %v; want %q", service, mode, got, err, want)
			}
			if !reflect.DeepEqual(c.Trailers(), testTrailers(mode)) {
				t.Errorf("%s/%s: Trailers = %v", service, mode, c.Trailers())
			}
		}
	}
}

func TestChunkedRoundTrip(t *testing.T) {
	for _, mode := range streamingModes {
		a, s := testAuth(mode, testSeed)
		body := buildChunked(mode, s, testChunks(), testTrailers(mode))
		c := a.NewChunkedReader(iotest.HalfReader(bytes.NewReader(body)))
		if c.Trailers() != nil {
			t.Errorf("%s: Trailers before EOF = %v", mode, c.Trailers())
		}
		got, err := readAllChunked(c)
		if want := bytes.Join(testChunks(), nil); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %q, %v, want %q", mode, got, err, want)
		}
		if tr := c.Trailers(); !reflect.DeepEqual(tr, testTrailers(mode)) {
			t.Errorf("%s: Trailers = %v, want %v", mode, tr, testTrailers(mode))
		}
		if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("%s: Read after EOF = %d, %v", mode, n, err)
		}
		// Through NewBodyReader too.
		a, s = testAuth(mode, testSeed)
		got, err = io.ReadAll(a.NewBodyReader(bytes.NewReader(buildChunked(mode, s, testChunks(), testTrailers(mode)))))
		if err != nil || !bytes.Equal(got, bytes.Join(testChunks(), nil)) {
			t.Errorf("%s: NewBodyReader: %q, %v", mode, got, err)
		}
	}
}

func TestChunkedEmptyBody(t *testing.T) {
	for _, mode := range streamingModes {
		a, s := testAuth(mode, testSeed)
		got, err := io.ReadAll(a.NewChunkedReader(bytes.NewReader(buildChunked(mode, s, nil, nil))))
		if err != nil || len(got) != 0 {
			t.Errorf("%s: empty body: %q, %v", mode, got, err)
		}
	}
}

// TestChunkedCorrupt corrupts well-formed bodies; a signed chunk must never
// be returned, even in part, unless its signature holds.
func TestChunkedCorrupt(t *testing.T) {
	type corruption struct {
		name string
		edit func(body []byte, mode PayloadMode) []byte
		// want per mode: signed, signed-trailer, unsigned-trailer
		want [3]error
	}
	replace := func(old, new string) func([]byte, PayloadMode) []byte {
		return func(b []byte, _ PayloadMode) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	// sigOf finds the n-th chunk-signature value.
	sigAt := func(b []byte, n int) int {
		i := 0
		for range n + 1 {
			j := bytes.Index(b[i:], []byte("chunk-signature="))
			if j < 0 {
				return -1
			}
			i += j + len("chunk-signature=")
		}
		return i
	}
	flip := func(b []byte, i int) []byte {
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return b
	}
	M, P := ErrMalformed, ErrPayloadMismatch
	tests := []corruption{
		{"data-byte", replace("aaaa", "aaab"), [3]error{P, P, nil}},
		{"data-byte-last-chunk", func(b []byte, _ PayloadMode) []byte {
			i := bytes.Index(b, []byte{0, 1, 2, 255})
			b[i+5] ^= 0x80
			return b
		}, [3]error{P, P, nil}},
		{"chunk-signature", func(b []byte, m PayloadMode) []byte {
			if m == PayloadStreamingUnsignedTrailer {
				return b
			}
			return flip(b, sigAt(b, 1)+10)
		}, [3]error{P, P, nil}},
		{"final-chunk-signature", func(b []byte, m PayloadMode) []byte {
			if m == PayloadStreamingUnsignedTrailer {
				return b
			}
			return flip(b, sigAt(b, 3)+63)
		}, [3]error{P, P, nil}},
		{"chunks-swapped", func(b []byte, m PayloadMode) []byte {
			// Move the first chunk (header, data, CRLF) after the second.
			first := bytes.Index(b, []byte("\r\n")) + 2 + 100 + 2
			second := first + bytes.Index(b[first:], []byte("looks like framing\r\n\r\n")) + len("looks like framing\r\n\r\n")
			out := append([]byte(nil), b[first:second]...)
			out = append(out, b[:first]...)
			return append(out, b[second:]...)
		}, [3]error{P, P, nil}},
		{"trailer-value", replace("sOO8/Q==", "sOO8/Q=="[:7]+"A"), [3]error{nil, P, nil}},
		{"trailer-signature", func(b []byte, m PayloadMode) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
			if i < 0 {
				return b
			}
			return flip(b, i+len("x-amz-trailer-signature:")+5)
		}, [3]error{nil, P, nil}},
		{"trailer-signature-missing", func(b []byte, m PayloadMode) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
			if i < 0 {
				return b
			}
			return append(b[:i:i], "\r\n"...)
		}, [3]error{nil, M, nil}},
		{"trailer-signature-not-last", func(b []byte, m PayloadMode) []byte {
			return append(bytes.TrimSuffix(b, []byte("\r\n")), "x-amz-late:1\r\n\r\n"...)
		}, [3]error{M, M, nil}},
		{"trailer-added", func(b []byte, m PayloadMode) []byte {
			i := bytes.LastIndex(b, []byte("x-amz-trailer-signature:"))
			if i < 0 {
				i = len(b) - 2
			}
			return append(b[:i:i], append([]byte("x-amz-evil:1\r\n"), b[i:]...)...)
		}, [3]error{M, P, nil}},
		{"trailer-not-name-value", func(b []byte, m PayloadMode) []byte {
			return append(b[:len(b)-2:len(b)-2], "garbage\r\n\r\n"...)
		}, [3]error{M, M, M}},
		{"data-after-end", func(b []byte, _ PayloadMode) []byte { return append(b, 'x') }, [3]error{M, M, M}},
		{"lf-only", func(b []byte, _ PayloadMode) []byte { return bytes.Replace(b, []byte("\r\n"), []byte("\n"), 1) }, [3]error{M, M, M}},
		{"no-crlf-after-data", func(b []byte, _ PayloadMode) []byte {
			i := bytes.Index(b, []byte("\r\n")) + 2 + 100
			return append(b[:i:i], b[i+2:]...)
		}, [3]error{M, M, M}},
		{"size-too-big-for-data", replace("64", "65"), [3]error{M, M, M}},
		{"size-not-hex", replace("64", "6g"), [3]error{M, M, M}},
		{"size-0x", replace("64", "0x64"), [3]error{M, M, M}},
		{"size-negative", replace("64", "-64"), [3]error{M, M, M}},
		{"size-empty", func(b []byte, _ PayloadMode) []byte { return b[2:] }, [3]error{M, M, M}},
		{"extension-in-unsigned", func(b []byte, m PayloadMode) []byte {
			if m != PayloadStreamingUnsignedTrailer {
				return b
			}
			return bytes.Replace(b, []byte("64\r\n"), []byte("64;x=y\r\n"), 1)
		}, [3]error{nil, nil, M}},
		{"no-chunk-signature", func(b []byte, m PayloadMode) []byte {
			if m == PayloadStreamingUnsignedTrailer {
				return b
			}
			return bytes.Replace(b, []byte(";chunk-signature="), []byte(";chunk-signatur="), 1)
		}, [3]error{M, M, nil}},
		{"short-chunk-signature", func(b []byte, m PayloadMode) []byte {
			if m == PayloadStreamingUnsignedTrailer {
				return b
			}
			i := sigAt(b, 0)
			return append(b[:i+63:i+63], b[i+64:]...)
		}, [3]error{M, M, nil}},
		{"line-too-long", func(b []byte, m PayloadMode) []byte {
			return append([]byte("64"+strings.Repeat(" ", 5000)), b[2:]...)
		}, [3]error{M, M, M}},
		{"oversize-chunk", func(b []byte, m PayloadMode) []byte {
			return append([]byte(fmt.Sprintf("%x", MaxChunkBytes+1)), b[2:]...)
		}, [3]error{M, M, M}},
		{"huge-size", func(b []byte, m PayloadMode) []byte {
			return append([]byte("ffffffffffffffffffffffff"), b[2:]...)
		}, [3]error{M, M, M}},
	}
	for _, tc := range tests {
		for mi, mode := range streamingModes {
			a, s := testAuth(mode, testSeed)
			chunks := testChunks()
			body := buildChunked(mode, s, chunks, testTrailers(mode))
			body = tc.edit(bytes.Clone(body), mode)
			c := a.NewChunkedReader(bytes.NewReader(body))
			got, err := readAllChunked(c)
			want := tc.want[mi]
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Errorf("%s/%s: read error %v, want %v", tc.name, mode, err, want)
				continue
			}
			if err != nil {
				if c.Trailers() != nil {
					t.Errorf("%s/%s: Trailers after error = %v", tc.name, mode, c.Trailers())
				}
				if n, err2 := c.Read(make([]byte, 10)); n != 0 || err2 != err {
					t.Errorf("%s/%s: error not sticky: %d, %v", tc.name, mode, n, err2)
				}
			}
			// In the signed modes, what was returned is a prefix made of
			// whole, genuine chunks.
			if mode != PayloadStreamingUnsignedTrailer && err != nil {
				ok := false
				for n := 0; n <= len(chunks); n++ {
					ok = ok || bytes.Equal(got, bytes.Join(chunks[:n], nil))
				}
				if !ok {
					t.Errorf("%s/%s: returned %q before failing: not whole verified chunks", tc.name, mode, got)
				}
			}
		}
	}
}

func TestChunkedTruncated(t *testing.T) {
	for _, mode := range streamingModes {
		a, s := testAuth(mode, testSeed)
		body := buildChunked(mode, s, testChunks(), testTrailers(mode))
		for n := range len(body) {
			a := *a
			_, err := readAllChunked(a.NewChunkedReader(bytes.NewReader(body[:n])))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: body truncated to %d of %d bytes: %v, want ErrMalformed", mode, n, len(body), err)
			}
		}
	}
}

func TestChunkedReaderError(t *testing.T) {
	a, s := testAuth(PayloadStreamingSigned, testSeed)
	body := buildChunked(PayloadStreamingSigned, s, testChunks(), nil)
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(body[:50]), iotest.ErrReader(boom))
	if _, err := readAllChunked(a.NewChunkedReader(r)); err != boom {
		t.Errorf("read error = %v, want the reader's error as is", err)
	}
}

func TestChunkedMaxChunk(t *testing.T) {
	a, s := testAuth(PayloadStreamingSigned, testSeed)
	big := bytes.Repeat([]byte{'z'}, MaxChunkBytes)
	body := buildChunked(PayloadStreamingSigned, s, [][]byte{big}, nil)
	c := a.NewChunkedReader(bytes.NewReader(body))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("MaxChunkBytes chunk: %d bytes, %v", len(got), err)
	}

	// A chunk announced at the maximum but not sent does not make the reader
	// allocate the maximum.
	a, _ = testAuth(PayloadStreamingSigned, testSeed)
	c = a.NewChunkedReader(strings.NewReader(fmt.Sprintf("%x;chunk-signature=%s\r\nshort", MaxChunkBytes, testSeed)))
	if _, err := io.ReadAll(c); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated big chunk: %v, want ErrMalformed", err)
	}
	if cap(c.buf) > 128<<10 {
		t.Errorf("reader allocated %d bytes for 5 received", cap(c.buf))
	}
}

func TestBodyHelpersWrongMode(t *testing.T) {
	for _, mode := range []PayloadMode{PayloadSHA256, PayloadUnsigned} {
		a, _ := testAuth(mode, testSeed)
		_, err := io.ReadAll(a.NewChunkedReader(strings.NewReader("0\r\n\r\n")))
		if err == nil || errors.Is(err, ErrMalformed) || errors.Is(err, ErrPayloadMismatch) {
			t.Errorf("NewChunkedReader in %s: %v, want a caller error", mode, err)
		}
	}
	for _, mode := range streamingModes {
		a, _ := testAuth(mode, testSeed)
		if err := a.CheckPayload(nil); err == nil || errors.Is(err, ErrPayloadMismatch) {
			t.Errorf("CheckPayload in %s: %v, want a caller error", mode, err)
		}
	}
}

func TestNewBodyReader(t *testing.T) {
	body := []byte("the body")
	a := &Auth{Mode: PayloadSHA256, payloadHash: [32]byte(refHMACFree(body))}
	got, err := io.ReadAll(a.NewBodyReader(iotest.OneByteReader(bytes.NewReader(body))))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("NewBodyReader(good) = %q, %v", got, err)
	}
	_, err = io.ReadAll(a.NewBodyReader(bytes.NewReader(append(body, '!'))))
	if !errors.Is(err, ErrPayloadMismatch) {
		t.Errorf("NewBodyReader(bad) = %v, want ErrPayloadMismatch", err)
	}
	a.Mode = PayloadUnsigned
	got, err = io.ReadAll(a.NewBodyReader(bytes.NewReader(append(body, '!'))))
	if err != nil || len(got) != len(body)+1 {
		t.Errorf("NewBodyReader(unsigned) = %q, %v", got, err)
	}
}

func refHMACFree(b []byte) []byte {
	h, _ := hex.DecodeString(hexSHA256(b))
	return h
}
