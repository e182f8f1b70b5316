package k2vhttp

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The poll tests run in parallel: each waits up to a poll timeout of 1 s.

// timedResponse is a response and how long it took.
type timedResponse struct {
	*response
	took time.Duration
}

// async sends a request in a goroutine; the result arrives on the channel.
// It uses the harness's request building on the test goroutine, so that
// t.Fatal is only called there.
func (ts *testServer) async(method, path string, body []byte, headers ...string) <-chan timedResponse {
	ts.t.Helper()
	req := ts.request(method, path, body, headers...)
	ts.sign(req, body, ts.key.ID, ts.key.Secret, ts.region)
	ch := make(chan timedResponse, 1)
	go func() {
		start := time.Now()
		resp, err := ts.client.Do(req)
		if err != nil {
			ch <- timedResponse{&response{status: -1, body: []byte(err.Error())}, time.Since(start)}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			ch <- timedResponse{&response{status: -1, body: []byte(err.Error())}, time.Since(start)}
			return
		}
		ch <- timedResponse{&response{status: resp.StatusCode, header: resp.Header, body: b}, time.Since(start)}
	}()
	return ch
}

// await waits for an async response, at most 20 s.
func await(t *testing.T, what string, ch <-chan timedResponse) timedResponse {
	t.Helper()
	select {
	case r := <-ch:
		if r.status < 0 {
			t.Fatalf("%s: %s", what, r.body)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no answer after 20 s", what)
	}
	panic("unreachable")
}

// settle gives a request sent with async time to reach the server and
// start waiting. The outcome checked never depends on it (a write that
// lands before the poll starts is found by its immediate check); it only
// makes the wake-up path the one usually exercised.
func settle() { time.Sleep(100 * time.Millisecond) }

// want304 checks a poll that timed out: 304, empty body, no token header,
// after about the 1 s timeout.
func want304(t *testing.T, what string, r timedResponse) {
	t.Helper()
	if r.status != 304 || len(r.body) != 0 || r.header.Get(tokenHeader) != "" {
		t.Errorf("%s: %d, body %q, token %q; want 304, empty, no token", what, r.status, r.body, r.header.Get(tokenHeader))
	}
	if r.took < 900*time.Millisecond {
		t.Errorf("%s: answered after %v, before the 1 s timeout", what, r.took)
	}
}

// ---- §6.2 PollItem ----

func pollPath(pk, sk, token string, timeout int) string {
	return fmt.Sprintf("%s&causality_token=%s&timeout=%d", itemPath(pk, sk), token, timeout)
}

// TestPollItemImmediate: an item that already changed is answered at once,
// as ReadItem would.
func TestPollItemImmediate(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "A", "")
	_, tokA := ts.read("pk", "s")
	ts.put("pk", "s", "B", tokA)
	_, tokB := ts.read("pk", "s")

	r := await(t, "poll with an old token", ts.async("GET", pollPath("pk", "s", tokA, 10), nil))
	if r.status != 200 || decodeValues(t, r.body) != `["B"]` || r.header.Get(tokenHeader) != tokB || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("poll with an old token: %d %s %s, want 200 [B] with token %s", r.status, r.body, r.header.Get(tokenHeader), tokB)
	}
	if r.took > 5*time.Second {
		t.Errorf("poll with an old token took %v, want an immediate answer", r.took)
	}
	// the empty token on an existing item
	r = await(t, "poll with the empty token", ts.async("GET", pollPath("pk", "s", emptyToken, 10), nil, "Accept", "application/octet-stream"))
	if r.status != 200 || string(r.body) != "B" || r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get(tokenHeader) != tokB {
		t.Errorf("binary poll with the empty token: %d %q, want 200 B", r.status, r.body)
	}
	if r.took > 5*time.Second {
		t.Errorf("poll with the empty token took %v, want an immediate answer", r.took)
	}
	// §4.5: "newer" means some node time is larger, missing entries being
	// 0; it is not a partial order
	tB := decodeToken(t, tokB)[n1]
	for _, tt := range []struct {
		name  string
		token string
		wake  bool
	}{
		{"n1 one less, n2 far ahead", encodeToken([][2]uint64{{n1, tB - 1}, {n2, 1 << 62}}, nil), true},
		{"only n2", encodeToken([][2]uint64{{n2, 1 << 62}}, nil), true},
		{"n1 equal, n2 ahead", encodeToken([][2]uint64{{n1, tB}, {n2, 5}}, nil), false},
		{"n1 far ahead", encodeToken([][2]uint64{{n1, 1 << 62}}, nil), false},
		{"the item's own token", tokB, false},
	} {
		r := await(t, tt.name, ts.async("GET", pollPath("pk", "s", tt.token, 1), nil))
		if !tt.wake {
			want304(t, tt.name, r)
			continue
		}
		if r.status != 200 || decodeValues(t, r.body) != `["B"]` || r.took > 900*time.Millisecond {
			t.Errorf("%s: %d %s after %v, want 200 [B] at once", tt.name, r.status, r.body, r.took)
		}
	}
}

// TestPollDefaultTimeout: without a timeout, polls wait longer than the
// 1 s minimum (the default is 300 s): a write 1.5 s later still wakes them.
func TestPollDefaultTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	_, tok := ts.read("pk", "s")
	m := ts.pollRange("pk", map[string]any{}).SeenMarker
	item := ts.async("GET", itemPath("pk", "s")+"&causality_token="+tok, nil)
	rng := ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m}))
	time.Sleep(1500 * time.Millisecond) // past a 1 s timeout: what is tested
	ts.put("pk", "s", "w", tok)
	if r := await(t, "PollItem", item); r.status != 200 || decodeValues(t, r.body) != `["w"]` {
		t.Errorf("PollItem without timeout: %d %s after %v, want 200 [w]", r.status, r.body, r.took)
	}
	if r := await(t, "PollRange", rng); r.status != 200 {
		t.Errorf("PollRange without timeout: %d %s after %v, want 200", r.status, r.body, r.took)
	}
}

// TestPollItemAnswers: the answer follows the Accept rules of ReadItem,
// including 409, 204 and 406.
func TestPollItemAnswers(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "conflict", "a", "")
	ts.put("pk", "conflict", "b", "")
	ts.del("pk", "tomb", "")
	_, tokC := ts.read("pk", "conflict")
	_, tokT := ts.read("pk", "tomb")
	tests := []struct {
		sk, accept string
		status     int
		ctype      string
		body       string
		token      string
	}{
		{"conflict", "application/octet-stream", 409, "", "", tokC},
		{"conflict", "*/*", 200, "application/json", `["a","b"]`, tokC},
		{"tomb", "application/octet-stream", 204, "application/octet-stream", "", tokT},
		{"tomb", "application/json", 200, "application/json", `[null]`, tokT},
	}
	for _, tt := range tests {
		what := tt.sk + " " + tt.accept
		r := await(t, what, ts.async("GET", pollPath("pk", tt.sk, emptyToken, 10), nil, "Accept", tt.accept))
		body := string(r.body)
		if r.header.Get("Content-Type") == "application/json" {
			body = decodeValues(t, r.body)
		}
		if r.status != tt.status || r.header.Get("Content-Type") != tt.ctype || body != tt.body || r.header.Get(tokenHeader) != tt.token {
			t.Errorf("%s: %d %q %q token %q, want %d %q %q token %q", what, r.status, r.header.Get("Content-Type"), body, r.header.Get(tokenHeader),
				tt.status, tt.ctype, tt.body, tt.token)
		}
		if _, ok := r.header["Content-Type"]; r.status == 409 && ok {
			t.Errorf("%s: 409 with a Content-Type", what)
		}
	}
	// 406 before waiting, even for a missing item
	r := await(t, "406", ts.async("GET", pollPath("pk", "missing", emptyToken, 10), nil, "Accept", "text/html"))
	wantError(t, "poll with Accept text/html", r.response, 406, "NotAcceptable")
	if r.took > 5*time.Second {
		t.Errorf("406 after %v, want an immediate answer", r.took)
	}
	// parameters
	r = await(t, "timeout=soon", ts.async("GET", itemPath("pk", "tomb")+"&causality_token="+emptyToken+"&timeout=soon", nil))
	wantError(t, "timeout=soon", r.response, 400, "InvalidRequest")
	r = await(t, "missing sort_key", ts.async("GET", "/app/pk?causality_token="+emptyToken, nil))
	wantError(t, "missing sort_key", r.response, 400, "InvalidRequest")
}

// TestPollItemTimeout: 304 after the timeout; timeout=0 behaves as 1; a
// write to another item of the partition does not wake the poll.
func TestPollItemTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	_, tok := ts.read("pk", "s")
	p1 := ts.async("GET", pollPath("pk", "s", tok, 1), nil)
	p0 := ts.async("GET", pollPath("pk", "s", tok, 0), nil, "Accept", "application/octet-stream")
	// a missing item with a non-empty token: nothing newer
	pm := ts.async("GET", pollPath("pk", "missing", tok, 1), nil)
	ts.put("pk", "other", "x", "")
	ts.put("other", "s", "x", "")
	want304(t, "timeout=1", await(t, "timeout=1", p1))
	want304(t, "timeout=0", await(t, "timeout=0", p0))
	want304(t, "missing item", await(t, "missing item", pm))
}

// TestPollItemWake: a write wakes a waiting poll, which answers with the
// new state.
func TestPollItemWake(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "old", "")
	_, tok := ts.read("pk", "s")

	poll := ts.async("GET", pollPath("pk", "s", tok, 10), nil)
	settle()
	ts.put("pk", "s", "new", tok)
	r := await(t, "woken poll", poll)
	_, tokNew := ts.read("pk", "s")
	if r.status != 200 || decodeValues(t, r.body) != `["new"]` || r.header.Get(tokenHeader) != tokNew {
		t.Errorf("woken poll: %d %s token %s, want 200 [new] token %s", r.status, r.body, r.header.Get(tokenHeader), tokNew)
	}
	if r.took > 5*time.Second {
		t.Errorf("woken poll answered after %v", r.took)
	}

	// a delete wakes it too
	poll = ts.async("GET", pollPath("pk", "s", tokNew, 10), nil, "Accept", "application/octet-stream")
	settle()
	ts.del("pk", "s", tokNew)
	r = await(t, "poll woken by a delete", poll)
	if r.status != 204 || r.header.Get(tokenHeader) == "" {
		t.Errorf("poll woken by a delete: %d %q, want 204 with a token", r.status, r.body)
	}

	// the empty token on a missing key returns on the first write
	poll = ts.async("GET", pollPath("pk", "fresh", emptyToken, 10), nil)
	settle()
	ts.put("pk", "other", "not this one", "")
	ts.put("pk", "fresh", "first", "")
	r = await(t, "poll of a missing key", poll)
	if r.status != 200 || decodeValues(t, r.body) != `["first"]` {
		t.Errorf("poll of a missing key: %d %s, want 200 [first]", r.status, r.body)
	}
	if r.took > 5*time.Second {
		t.Errorf("poll of a missing key answered after %v", r.took)
	}
}

// ---- §9 PollRange ----

type pollRangeJSON struct {
	Items      []batchItemJSON `json:"items"`
	SeenMarker string          `json:"seenMarker"`
}

// decodePollRange checks and decodes a 200 PollRange response.
func decodePollRange(t *testing.T, what string, r *response) pollRangeJSON {
	t.Helper()
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %q %s, want 200 JSON", what, r.status, r.header.Get("Content-Type"), r.body)
	}
	if keys := jsonKeys(t, r.body); !slices.Equal(keys, []string{"items", "seenMarker"}) {
		t.Errorf("%s: members %v, want items, seenMarker", what, keys)
	}
	var raw struct{ Items []json.RawMessage }
	json.Unmarshal(r.body, &raw)
	if raw.Items == nil {
		t.Errorf("%s: items is not an array: %s", what, r.body)
	}
	for _, it := range raw.Items {
		if keys := jsonKeys(t, it); !slices.Equal(keys, []string{"ct", "sk", "v"}) {
			t.Errorf("%s: item members %v, want ct, sk, v", what, keys)
		}
	}
	var out pollRangeJSON
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if out.SeenMarker == "" {
		t.Errorf("%s: empty seenMarker", what)
	}
	return out
}

// showItems shows items as "sk=values …".
func showItems(t *testing.T, items []batchItemJSON) string {
	t.Helper()
	var out []string
	for _, it := range items {
		out = append(out, it.SK+"="+showValues(t, it.V))
	}
	return strings.Join(out, " ")
}

// pollRange runs a PollRange that must answer 200.
func (ts *testServer) pollRange(pk string, body map[string]any) pollRangeJSON {
	ts.t.Helper()
	b, _ := json.Marshal(body)
	r := ts.do("POST", "/app/"+pk+"?poll_range", b)
	return decodePollRange(ts.t, string(b), r)
}

func pollBody(body map[string]any) []byte {
	b, _ := json.Marshal(body)
	return b
}

// TestPollRangeInitial: without seenMarker, every item of the range,
// tombstones included, and a marker.
func TestPollRangeInitial(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.seed("pk", "a", "b1", "b2", "c")
	ts.put("pk", "c", "c2", "")
	ts.del("pk", "t", "")
	_, tokC := ts.read("pk", "c")
	for _, send := range []struct{ method, path string }{{"POST", "/app/pk?poll_range"}, {"SEARCH", "/app/pk?poll_range"}, {"POST", "/app/pk?poll_range=1"}} {
		r := ts.do(send.method, send.path, []byte(`{}`))
		res := decodePollRange(t, send.method+" {}", r)
		if got := showItems(t, res.Items); got != `a=["a"] b1=["b1"] b2=["b2"] c=["c","c2"] t=[null]` {
			t.Errorf("%s {}: %s", send.method, got)
		}
		if res.Items[3].CT != tokC {
			t.Errorf("%s {}: ct of c %s, want the ReadItem token %s", send.method, res.Items[3].CT, tokC)
		}
	}
	tests := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"start": "b2"}, "b2 c t"},
		{map[string]any{"end": "b2"}, "a b1"},
		{map[string]any{"prefix": "b"}, "b1 b2"},
		{map[string]any{"prefix": "t"}, "t"},
		// start need not begin with prefix: the conditions are combined
		{map[string]any{"prefix": "b", "start": "a"}, "b1 b2"},
		{map[string]any{"prefix": "b", "start": "b15"}, "b2"},
		{map[string]any{"prefix": "b", "start": "c"}, ""},
		{map[string]any{"start": "b1", "end": "c"}, "b1 b2"},
		{map[string]any{"prefix": "x"}, ""},
		{map[string]any{"prefix": nil, "start": nil, "end": nil, "seenMarker": nil, "timeout": 1, "unknown": true}, "a b1 b2 c t"},
	}
	for _, tt := range tests {
		res := ts.pollRange("pk", tt.body)
		if got := strings.Join(sortKeys(res.Items), " "); got != tt.want {
			t.Errorf("%s: %s, want %s", pollBody(tt.body), got, tt.want)
		}
	}
	// an empty partition: no items, a marker
	r := ts.do("POST", "/app/empty?poll_range", []byte(`{}`))
	if res := decodePollRange(t, "empty partition", r); len(res.Items) != 0 {
		t.Errorf("empty partition: %v", res.Items)
	}
}

// TestPollRangeInvalid: an empty body, wrong types, bad markers → 400.
func TestPollRangeInvalid(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, tt := range []struct{ body, msg string }{
		{``, "Invalid JSON"},
		{`[]`, "Invalid JSON"},
		{`[{}]`, "Invalid JSON"},
		{`"x"`, "Invalid JSON"},
		{`{`, "Invalid JSON"},
		{`{} {}`, "Invalid JSON"},
		{`{"timeout":"1"}`, "Invalid JSON"},
		{`{"timeout":-1}`, "Invalid JSON"},
		{`{"timeout":1.5}`, "Invalid JSON"},
		{`{"prefix":1}`, "Invalid JSON"},
		{`{"start":false}`, "Invalid JSON"},
		{`{"end":[]}`, "Invalid JSON"},
		{`{"seenMarker":5}`, "Invalid JSON"},
		{"{\"prefix\":\"\xff\"}", "Invalid JSON"},
		{`{"seenMarker":"!!!"}`, ""},
		{`{"seenMarker":""}`, ""},
		{`{"seenMarker":"AAAA"}`, ""},
		{`{"seenMarker":"KLUv/QBYAQAAAA=="}`, ""},
	} {
		for _, method := range []string{"POST", "SEARCH"} {
			r := ts.do(method, "/app/pk?poll_range", []byte(tt.body))
			e := wantError(t, method+" "+tt.body, r, 400, "InvalidRequest")
			wantMessage(t, method+" "+tt.body, e, tt.msg)
		}
	}
	// a valid marker of this server, damaged
	m := ts.pollRange("pk", map[string]any{}).SeenMarker
	for _, bad := range []string{m + "AAAA", m[:len(m)-4], "x" + m} {
		r := ts.do("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": bad, "timeout": 1}))
		if r.status != 400 && r.status != 304 {
			t.Errorf("damaged marker %q: %d %s, want 400 (or 304 if it still decodes)", bad, r.status, r.body)
		}
	}
}

// TestPollRangeChanges: with a marker, only the items new since it; 304
// when nothing changes before the timeout; changes outside the range do
// not count.
func TestPollRangeChanges(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.seed("pk", "a", "b", "c", "keep")
	m0 := ts.pollRange("pk", map[string]any{}).SeenMarker

	// nothing changed: 304 after the timeout (and timeout 0 behaves as 1),
	// even when other partitions, or items outside the range, change
	var wg sync.WaitGroup
	results := make([]timedResponse, 3)
	polls := []<-chan timedResponse{
		ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m0, "timeout": 1, "prefix": "b"})),
		ts.async("SEARCH", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m0, "timeout": 0, "start": "b", "end": "c"})),
		ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m0, "timeout": 1, "prefix": "k"})),
	}
	for i, p := range polls {
		wg.Go(func() {
			select {
			case results[i] = <-p:
			case <-time.After(20 * time.Second):
			}
		})
	}
	ts.put("other", "b", "x", "")
	ts.put("pk", "a", "outside", "")
	settle() // writes before and during the polls
	ts.put("pk", "zz", "outside", "")
	wg.Wait()
	for i, what := range []string{"prefix b, timeout 1", "[b, c), timeout 0", "prefix k, timeout 1"} {
		if results[i].response == nil {
			t.Fatalf("%s: no answer", what)
		}
		want304(t, what, results[i])
	}

	// changes before the call: answered at once, with only the new items
	_, tokB := ts.read("pk", "b")
	ts.put("pk", "b", "b2", tokB)
	ts.del("pk", "c", "")
	ts.put("pk", "d", "new", "")
	start := time.Now()
	res := ts.pollRange("pk", map[string]any{"seenMarker": m0, "timeout": 10})
	if got := showItems(t, res.Items); got != `a=["a","outside"] b=["b2"] c=["c",null] d=["new"] zz=["outside"]` {
		t.Errorf("items new since the marker: %s", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("already changed: answered after %v", took)
	}
	// the sub-range
	res2 := ts.pollRange("pk", map[string]any{"seenMarker": m0, "timeout": 10, "start": "c", "end": "d"})
	if got := strings.Join(sortKeys(res2.Items), " "); got != "c" {
		t.Errorf("new items in [c, d): %s, want c", got)
	}
	// the next marker has seen them
	m1 := res.SeenMarker
	r := await(t, "poll with the new marker", ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m1, "timeout": 1})))
	want304(t, "poll with the new marker", r)
}

// TestPollRangeWake: a write in the range wakes a waiting poll, which
// returns only that item.
func TestPollRangeWake(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.seed("pk", "a", "b")
	m := ts.pollRange("pk", map[string]any{}).SeenMarker
	poll := ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m, "timeout": 10}))
	settle()
	ts.put("pk", "b", "b2", "")
	r := await(t, "woken PollRange", poll)
	res := decodePollRange(t, "woken PollRange", r.response)
	if got := showItems(t, res.Items); got != `b=["b","b2"]` {
		t.Errorf("woken PollRange: %s, want b=[b,b2]", got)
	}
	if r.took > 5*time.Second {
		t.Errorf("woken PollRange answered after %v", r.took)
	}
	// a delete wakes it too, and the item comes with its tombstone
	poll = ts.async("SEARCH", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": res.SeenMarker, "timeout": 10, "prefix": "a"}))
	settle()
	ts.put("pk", "b", "not in prefix a", "")
	_, tok := ts.read("pk", "a")
	ts.del("pk", "a", tok)
	r = await(t, "PollRange woken by a delete", poll)
	res = decodePollRange(t, "PollRange woken by a delete", r.response)
	if got := showItems(t, res.Items); got != `a=[null]` {
		t.Errorf("PollRange woken by a delete: %s, want a=[null]", got)
	}
}

// TestPollRangePrefixWithoutStart: grange must return correct results for
// a prefix without start, where the reference hides items (§9,
// compatibility note).
func TestPollRangePrefixWithoutStart(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.seed("pk", "a", "b1", "b2", "c")
	res := ts.pollRange("pk", map[string]any{"prefix": "b"})
	if got := strings.Join(sortKeys(res.Items), " "); got != "b1 b2" {
		t.Fatalf("prefix b: %s, want b1 b2", got)
	}
	ts.put("pk", "b2", "changed", "")
	ts.put("pk", "a", "changed", "")
	start := time.Now()
	res = ts.pollRange("pk", map[string]any{"prefix": "b", "seenMarker": res.SeenMarker, "timeout": 10})
	if got := showItems(t, res.Items); got != `b2=["b2","changed"]` {
		t.Errorf("prefix b, already changed: %s, want b2=[b2,changed]", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("prefix b, already changed: answered after %v", took)
	}
}

// TestPollRangeSubRangeMarker: a marker may be reused for a sub-range of
// the range it was issued for.
func TestPollRangeSubRangeMarker(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.seed("pk", "a", "b1", "b2", "c")
	m := ts.pollRange("pk", map[string]any{}).SeenMarker
	// nothing new in the sub-range
	p := ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"prefix": "b", "seenMarker": m, "timeout": 1}))
	want304(t, "sub-range, nothing new", await(t, "sub-range", p))
	// a change inside and one outside the sub-range
	ts.put("pk", "a", "outside", "")
	ts.put("pk", "b2", "inside", "")
	res := ts.pollRange("pk", map[string]any{"prefix": "b", "seenMarker": m, "timeout": 10})
	if got := strings.Join(sortKeys(res.Items), " "); got != "b2" {
		t.Errorf("sub-range after changes: %s, want b2", got)
	}
	res = ts.pollRange("pk", map[string]any{"start": "a", "end": "b2", "seenMarker": m, "timeout": 10})
	if got := strings.Join(sortKeys(res.Items), " "); got != "a" {
		t.Errorf("[a, b2) after changes: %s, want a", got)
	}
}

// TestPollNoLostWakeup: a write racing with the start of a poll is never
// lost (§6.2: subscribe first, then read). Each round starts a poll and
// writes at once; a lost wake-up would end in a 304 after the timeout.
func TestPollNoLostWakeup(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "v0", "")
	m := ts.pollRange("pk", map[string]any{}).SeenMarker
	for i := 1; i <= 20; i++ {
		_, tok := ts.read("pk", "s")
		item := ts.async("GET", pollPath("pk", "s", tok, 5), nil)
		rng := ts.async("POST", "/app/pk?poll_range", pollBody(map[string]any{"seenMarker": m, "timeout": 5}))
		ts.put("pk", "s", fmt.Sprint("v", i), tok)
		want := fmt.Sprintf(`["v%d"]`, i)
		if r := await(t, "PollItem", item); r.status != 200 || decodeValues(t, r.body) != want {
			t.Fatalf("round %d: PollItem %d %s after %v, want 200 %s", i, r.status, r.body, r.took, want)
		}
		r := await(t, "PollRange", rng)
		res := decodePollRange(t, "PollRange", r.response)
		if got := showItems(t, res.Items); got != "s="+want {
			t.Fatalf("round %d: PollRange %s after %v, want s=%s", i, got, r.took, want)
		}
		m = res.SeenMarker
	}
}
