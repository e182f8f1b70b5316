package sigv4

import (
	"bytes"
	"io"
	"testing"
)

// benchRequest is a typical K2V InsertItem, signed by the AWS SDK.
func benchRequest(tb testing.TB) *Request {
	tb.Helper()
	r, _ := newSDKRequest(tb, sdkCase{
		name: "bench", method: "PUT", target: "/my-bucket/user%2F42/inbox?sort_key=msg%2F0001",
		headers: [][2]string{
			{"Content-Type", "application/octet-stream"},
			{"X-Garage-Causality-Token", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"},
		},
		body: "a small value",
	}, "k2v", testRegion, t0)
	return r
}

func BenchmarkVerify(b *testing.B) {
	r := benchRequest(b)
	v := newTestVerifier("k2v", t0)
	if _, err := v.Verify(r, testLookup); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, testLookup); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedReader(b *testing.B) {
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	a, s := testAuth(PayloadStreamingSigned, testSeed)
	body := buildChunked(PayloadStreamingSigned, s, [][]byte{chunk, chunk, chunk, chunk}, nil)
	b.SetBytes(4 * int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.Discard, a.NewChunkedReader(bytes.NewReader(body))); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyAllocs pins the allocations of a Verify with a cached signing
// key: the returned Auth only.
func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	r := benchRequest(t)
	v := newTestVerifier("k2v", t0)
	if _, err := v.Verify(r, testLookup); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { v.Verify(r, testLookup) }); n > 1 {
		t.Errorf("Verify allocates %v times, want at most 1", n)
	}
}
