package k2v

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// noContentTransport answers every request with an empty 204 without any
// I/O, so that the benchmarks below measure the client's own cost:
// encoding, signing, building the request and handling the response.
type noContentTransport struct{}

func (noContentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{StatusCode: 204, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

func benchClient(b *testing.B) *Client {
	c, err := New(Config{
		Endpoint:        "http://127.0.0.1:3904",
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecret,
		Bucket:          "bench",
		HTTPClient:      &http.Client{Transport: noContentTransport{}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkInsertItemClientOverhead(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.InsertItem(ctx, "partition-0042", "item-000123", value, "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInsertBatchClientOverhead(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	ops := make([]InsertOp, 100)
	for i := range ops {
		ops[i] = InsertOp{PartitionKey: "partition-0042", SortKey: "item-" + strings.Repeat("0", i%7), Value: Bytes([]byte("value"))}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.InsertBatch(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDependencies enforces the rule of clients/: no package of this
// repository outside clients/, and nothing outside the standard library.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/grangeio/grange/clients/k2v").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, "github.com/grangeio/grange/clients/") {
			t.Errorf("clients/k2v depends on %s", p)
		}
	}
}

// TestConcurrentCallers runs 64 callers on one Client (under -race in CI):
// the Client and its signer are shared, nothing else is.
func TestConcurrentCallers(t *testing.T) {
	c, err := New(Config{
		Endpoint:        "http://127.0.0.1:3904",
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecret,
		Bucket:          "bench",
		HTTPClient:      &http.Client{Transport: noContentTransport{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 50 {
				if err := c.InsertItem(context.Background(), fmt.Sprint("p", g), fmt.Sprint("s", i), []byte("v"), ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
