package k2v

// Pagination and polling-loop tests against CANNED PAGES.
//
// The httptest servers here are not K2V implementations: each one replays
// pre-written response bodies chosen by a single field of the request
// (the "start" it received, or the call number), without signature checks
// or any data model. They test only the client's loop logic: following
// more/nextStart, stopping, and re-polling. Behaviour against a real
// server is covered by the integration tests that drive grange.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// cannedPages replays canned responses and records what it was asked.
type cannedPages struct {
	mu    sync.Mutex
	asked []string // the selector of each request, in order
	// pick returns the selector of a request and the response to send.
	pick func(r *http.Request, body []byte) (selector string, status int, resp string)
}

func (p *cannedPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sel, status, resp := p.pick(r, body)
	p.mu.Lock()
	p.asked = append(p.asked, sel)
	p.mu.Unlock()
	if resp != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, resp)
}

func (p *cannedPages) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.asked)
}

func newCannedClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{Endpoint: srv.URL, AccessKeyID: testAccessKey, SecretAccessKey: testSecret, Bucket: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// searchStart returns the raw JSON of the "start" of the single search of
// a ReadBatch body: null, "" or a key.
func searchStart(t *testing.T, body []byte) string {
	var s []map[string]json.RawMessage
	if err := json.Unmarshal(body, &s); err != nil || len(s) != 1 {
		t.Errorf("ReadBatch body %s: %v", body, err)
		return "?"
	}
	return string(s[0]["start"])
}

// readBatchPage writes a one-search ReadBatch response.
func readBatchPage(pk string, keys []string, more bool, nextStart string) string {
	items := make([]string, len(keys))
	for i, k := range keys {
		items[i] = fmt.Sprintf(`{"sk":%q,"ct":"ct-%s","v":["eA==",null]}`, k, k)
	}
	ns := "null"
	if more {
		ns = fmt.Sprintf("%q", nextStart)
	}
	return fmt.Sprintf(`[{"partitionKey":%q,"prefix":null,"start":null,"end":null,"limit":null,"reverse":false,`+
		`"singleItem":false,"conflictsOnly":false,"tombstones":false,"items":[%s],"more":%t,"nextStart":%s}]`,
		pk, strings.Join(items, ","), more, ns)
}

func collectScan(t *testing.T, seq func(func(Item, error) bool)) ([]string, error) {
	t.Helper()
	var keys []string
	for it, err := range seq {
		if err != nil {
			return keys, err
		}
		if it.PartitionKey != "p" || it.CausalityToken != CausalityToken("ct-"+it.SortKey) || len(it.Values) != 2 {
			t.Errorf("item %+v", it)
		}
		keys = append(keys, it.SortKey)
	}
	return keys, nil
}

func TestScanFollowsCannedPages(t *testing.T) {
	// Pages capped by the "server" although no limit is sent.
	pages := map[string]string{
		`null`:  readBatchPage("p", []string{"a", "b"}, true, "c"),
		`"c"`:   readBatchPage("p", []string{"c", "d.1"}, true, "d.2"),
		`"d.2"`: readBatchPage("p", []string{"d.2", "e"}, false, ""),
	}
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		if r.Method != "POST" || r.URL.RequestURI() != "/app?search" {
			t.Errorf("request %s %s", r.Method, r.URL.RequestURI())
		}
		start := searchStart(t, body)
		return start, 200, pages[start]
	}}
	c := newCannedClient(t, canned)

	keys, err := collectScan(t, c.Scan(context.Background(), "p", nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d.1", "d.2", "e"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("Scan keys = %v, want %v", keys, want)
	}
	if got, want := canned.requests(), []string{`null`, `"c"`, `"d.2"`}; !reflect.DeepEqual(got, want) {
		t.Errorf("starts requested = %v, want %v", got, want)
	}

	// Breaking out stops the requests.
	before := len(canned.requests())
	for it, err := range c.Scan(context.Background(), "p", nil) {
		if err != nil || it.SortKey != "a" {
			t.Errorf("first item %+v, %v", it, err)
		}
		break
	}
	if got := len(canned.requests()) - before; got != 1 {
		t.Errorf("break after the first item: %d requests, want 1", got)
	}

	// The iterator can run again from the start.
	keys, err = collectScan(t, c.Scan(context.Background(), "p", nil))
	if err != nil || len(keys) != 6 {
		t.Errorf("second Scan: %v, %v", keys, err)
	}
}

func TestScanContinuesAtEmptyKeyCanned(t *testing.T) {
	// Reverse listing whose next page starts at the empty sort key: the
	// continuation must send "start":"" rather than drop it (which would
	// restart from the top forever).
	pages := map[string]string{
		`"b"`: readBatchPage("p", []string{"b", "a"}, true, ""),
		`""`:  readBatchPage("p", []string{""}, false, ""),
	}
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		start := searchStart(t, body)
		if resp, ok := pages[start]; ok {
			return start, 200, resp
		}
		return start, 500, `{"code":"InternalError","message":"unexpected start"}`
	}}
	c := newCannedClient(t, canned)
	keys, err := collectScan(t, c.Scan(context.Background(), "p", &ScanOptions{Start: "b", Reverse: true, PageSize: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "a", ""}; !reflect.DeepEqual(keys, want) {
		t.Errorf("Scan keys = %q, want %q", keys, want)
	}
}

func TestScanNoProgressCanned(t *testing.T) {
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		return searchStart(t, body), 200, readBatchPage("p", nil, true, "x")
	}}
	c := newCannedClient(t, canned)
	_, err := collectScan(t, c.Scan(context.Background(), "p", nil))
	if !errors.Is(err, errNoProgress) {
		t.Errorf("Scan error = %v, want errNoProgress", err)
	}
	if got := canned.requests(); !reflect.DeepEqual(got, []string{`null`, `"x"`}) {
		t.Errorf("requests %v", got)
	}
}

func TestScanErrorMidwayCanned(t *testing.T) {
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		start := searchStart(t, body)
		if start == `null` {
			return start, 200, readBatchPage("p", []string{"a"}, true, "b")
		}
		return start, 503, `{"code":"ServiceUnavailable","message":"quorum","region":"garage","path":"/app"}`
	}}
	c := newCannedClient(t, canned)
	keys, err := collectScan(t, c.Scan(context.Background(), "p", nil))
	if !errors.Is(err, ErrServiceUnavailable) || !reflect.DeepEqual(keys, []string{"a"}) {
		t.Errorf("Scan = %v, %v; want [a], ErrServiceUnavailable", keys, err)
	}
}

func indexPage(pks []string, more bool, nextStart string) string {
	entries := make([]string, len(pks))
	for i, pk := range pks {
		entries[i] = fmt.Sprintf(`{"pk":%q,"entries":1,"conflicts":0,"values":1,"bytes":%d}`, pk, len(pk))
	}
	ns := "null"
	if more {
		ns = fmt.Sprintf("%q", nextStart)
	}
	return fmt.Sprintf(`{"prefix":null,"start":null,"end":null,"limit":null,"reverse":false,"partitionKeys":[%s],"more":%t,"nextStart":%s}`,
		strings.Join(entries, ","), more, ns)
}

func TestListPartitionsFollowsCannedPages(t *testing.T) {
	pages := map[string]string{
		"":         indexPage([]string{"keys", "mail/a"}, true, "mail/b c"),
		"mail/b c": indexPage([]string{"mail/b c"}, true, "mail+d"),
		"mail+d":   indexPage([]string{"mail+d"}, false, ""),
	}
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		if r.Method != "GET" || r.URL.Path != "/app" {
			t.Errorf("request %s %s", r.Method, r.URL.RequestURI())
		}
		if got := r.URL.Query().Get("limit"); got != "2" {
			t.Errorf("limit = %q, want 2", got)
		}
		start := r.URL.Query().Get("start")
		return start, 200, pages[start]
	}}
	c := newCannedClient(t, canned)
	var pks []string
	for p, err := range c.ListPartitions(context.Background(), &ListOptions{PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if p.Bytes != int64(len(p.PartitionKey)) {
			t.Errorf("partition %+v", p)
		}
		pks = append(pks, p.PartitionKey)
	}
	if want := []string{"keys", "mail/a", "mail/b c", "mail+d"}; !reflect.DeepEqual(pks, want) {
		t.Errorf("partitions = %q, want %q", pks, want)
	}
	if got, want := canned.requests(), []string{"", "mail/b c", "mail+d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("starts = %q, want %q", got, want)
	}
}

func TestListPartitionsEmptyNextStartCanned(t *testing.T) {
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		return r.URL.RawQuery, 200, indexPage([]string{"b", "a"}, true, "")
	}}
	c := newCannedClient(t, canned)
	var n int
	var last error
	for _, err := range c.ListPartitions(context.Background(), &ListOptions{Reverse: true}) {
		n++
		last = err
	}
	if n != 3 || !errors.Is(last, errEmptyNextStart) {
		t.Errorf("got %d elements, last error %v; want 3 and errEmptyNextStart", n, last)
	}
	if got := len(canned.requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestWatchRangeCannedPolls(t *testing.T) {
	// Call 1 (no marker): the initial listing; call 2: a timeout (304);
	// call 3: one change; then the callback stops the loop.
	type bodyT struct {
		Prefix     *string `json:"prefix"`
		Start      *string `json:"start"`
		SeenMarker *string `json:"seenMarker"`
		Timeout    *int    `json:"timeout"`
	}
	var calls int
	canned := &cannedPages{pick: func(r *http.Request, body []byte) (string, int, string) {
		if r.Method != "POST" || r.URL.RequestURI() != "/app/p?poll_range" {
			t.Errorf("request %s %s", r.Method, r.URL.RequestURI())
		}
		var b bodyT
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		if b.Start == nil || *b.Start != "m." || b.Timeout == nil || *b.Timeout != 5 {
			t.Errorf("body %s: want start = prefix and timeout 5", body)
		}
		marker := "null"
		if b.SeenMarker != nil {
			marker = *b.SeenMarker
		}
		calls++
		switch calls {
		case 1:
			return marker, 200, `{"items":[{"sk":"m.1","ct":"ct-m.1","v":[null]}],"seenMarker":"M1+/="}`
		case 2:
			return marker, 304, ""
		default:
			return marker, 200, `{"items":[{"sk":"m.2","ct":"ct-m.2","v":["eA==","eA=="]}],"seenMarker":"M2"}`
		}
	}}
	c := newCannedClient(t, canned)
	stop := errors.New("stop")
	var got [][]string
	err := c.WatchRange(context.Background(), "p", "", &PollRangeOptions{Prefix: "m.", Timeout: 5e9}, func(res *PollRangeResult) error {
		var keys []string
		for _, it := range res.Items {
			if it.PartitionKey != "p" {
				t.Errorf("item %+v", it)
			}
			keys = append(keys, it.SortKey)
		}
		got = append(got, keys)
		if len(got) == 2 {
			if res.SeenMarker != "M2" {
				t.Errorf("marker %q", res.SeenMarker)
			}
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("WatchRange = %v, want the callback's error", err)
	}
	if want := [][]string{{"m.1"}, {"m.2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches = %v, want %v", got, want)
	}
	if got, want := canned.requests(), []string{"null", "M1+/=", "M1+/="}; !reflect.DeepEqual(got, want) {
		t.Errorf("markers sent = %q, want %q", got, want)
	}

	// A done context ends the loop with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WatchRange(ctx, "p", "M2", nil, func(*PollRangeResult) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("WatchRange with a canceled context = %v", err)
	}
}
