package k2vhttp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

type indexEntryJSON struct {
	PK        string `json:"pk"`
	Entries   int64  `json:"entries"`
	Conflicts int64  `json:"conflicts"`
	Values    int64  `json:"values"`
	Bytes     int64  `json:"bytes"`
}

type indexJSON struct {
	Prefix        *string          `json:"prefix"`
	Start         *string          `json:"start"`
	End           *string          `json:"end"`
	Limit         *uint64          `json:"limit"`
	Reverse       bool             `json:"reverse"`
	PartitionKeys []indexEntryJSON `json:"partitionKeys"`
	More          bool             `json:"more"`
	NextStart     *string          `json:"nextStart"`
}

// index runs a ReadIndex that must succeed; query is without '?'.
func (ts *testServer) index(query string) indexJSON {
	ts.t.Helper()
	path := "/app"
	if query != "" {
		path += "?" + query
	}
	r := ts.do("GET", path, nil)
	if r.status != 200 {
		ts.t.Fatalf("ReadIndex %s: %d %s", query, r.status, r.body)
	}
	var out indexJSON
	if err := json.Unmarshal(r.body, &out); err != nil {
		ts.t.Fatalf("ReadIndex %s: %v in %s", query, err, r.body)
	}
	return out
}

// indexCounters shows the index as "pk:entries/conflicts/values/bytes …".
func (ts *testServer) indexCounters(query string) string {
	ts.t.Helper()
	var out []string
	for _, e := range ts.index(query).PartitionKeys {
		out = append(out, fmt.Sprintf("%s:%d/%d/%d/%d", e.PK, e.Entries, e.Conflicts, e.Values, e.Bytes))
	}
	return strings.Join(out, " ")
}

func indexKeys(ix indexJSON) []string {
	out := []string{}
	for _, e := range ix.PartitionKeys {
		out = append(out, e.PK)
	}
	return out
}

// TestReadIndexShape checks the response of §7 member by member.
func TestReadIndexShape(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		query string
		want  string // the echoed members, as JSON
	}{
		{"", `{"end":null,"limit":null,"more":false,"nextStart":null,"partitionKeys":[],"prefix":null,"reverse":false,"start":null}`},
		{"prefix=p&start=p1&end=p9&limit=5&reverse=false", `{"end":"p9","limit":5,"more":false,"nextStart":null,"partitionKeys":[],"prefix":"p","reverse":false,"start":"p1"}`},
		{"reverse=true&limit=0", `{"end":null,"limit":0,"more":false,"nextStart":null,"partitionKeys":[],"prefix":null,"reverse":true,"start":null}`},
		{"prefix=a+b%2Fc", `{"end":null,"limit":null,"more":false,"nextStart":null,"partitionKeys":[],"prefix":"a b/c","reverse":false,"start":null}`},
		// empty values are absent
		{"prefix=&start=&end=&limit=&reverse=", `{"end":null,"limit":null,"more":false,"nextStart":null,"partitionKeys":[],"prefix":null,"reverse":false,"start":null}`},
	}
	for _, tt := range tests {
		r := ts.do("GET", "/app?"+tt.query, nil)
		if r.status != 200 {
			t.Fatalf("ReadIndex ?%s: %d %s", tt.query, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("ReadIndex ?%s: Content-Type %q", tt.query, ct)
		}
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(m) // sorted members, no whitespace
		if string(got) != tt.want {
			t.Errorf("ReadIndex ?%s =\n  %s\nwant\n  %s", tt.query, got, tt.want)
		}
	}

	ts.put("pk", "s", "hello", "")
	r := ts.do("GET", "/app", nil)
	var raw struct{ PartitionKeys []json.RawMessage }
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.PartitionKeys) != 1 {
		t.Fatalf("ReadIndex: %s", r.body)
	}
	if keys := jsonKeys(t, raw.PartitionKeys[0]); !slices.Equal(keys, []string{"bytes", "conflicts", "entries", "pk", "values"}) {
		t.Errorf("index entry members %v, want exactly pk, entries, conflicts, values, bytes", keys)
	}
	if got, want := string(raw.PartitionKeys[0]), `{"pk":"pk","entries":1,"conflicts":0,"values":1,"bytes":5}`; compactJSON(t, got) != compactJSON(t, want) {
		t.Errorf("index entry %s, want %s", got, want)
	}
}

// compactJSON re-encodes a JSON object with sorted members.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestReadIndexCounters checks §11's counters and that partitions whose
// items are all deleted are not listed (§7).
func TestReadIndexCounters(t *testing.T) {
	ts := startServer(t)
	// ["x", null]: entries 1, conflicts 1, values 1, bytes 1
	ts.put("c", "s", "x", "")
	ts.del("c", "s", "")
	// two identical concurrent writes: entries 1, conflicts 0, values 1, bytes 4
	ts.put("d", "s", "same", "")
	ts.put("d", "s", "same", "")
	// a sum over items: "ab"; ["a", "bcd"]; an empty value; a tombstone
	ts.put("m", "1", "ab", "")
	ts.put("m", "2", "a", "")
	ts.put("m", "2", "bcd", "")
	ts.put("m", "3", "", "")
	ts.del("m", "4", "")
	// deleted with the token, and deleted by DeleteBatch: not listed
	ts.put("gone", "s", "v", "")
	_, tok := ts.read("gone", "s")
	ts.del("gone", "s", tok)
	ts.put("gone2", "a", "v", "")
	ts.put("gone2", "b", "w", "")
	if r := ts.do("POST", "/app?delete", []byte(`[{"partitionKey":"gone2"}]`)); r.status != 200 {
		t.Fatalf("DeleteBatch: %d %s", r.status, r.body)
	}
	// overwritten with the token: counts the new state only
	ts.put("o", "s", "first", "")
	_, tok = ts.read("o", "s")
	ts.put("o", "s", "2nd", tok)

	want := "c:1/1/1/1 d:1/0/1/4 m:3/1/4/6 o:1/0/1/3"
	eventually(t, func() error {
		if got := ts.indexCounters(""); got != want {
			return fmt.Errorf("index %s, want %s", got, want)
		}
		return nil
	})
	// an item of a listed partition is resolved: conflicts go down
	_, tok = ts.read("m", "2")
	ts.put("m", "2", "z", tok)
	eventually(t, func() error {
		if got := ts.indexCounters("prefix=m"); got != "m:3/0/3/3" {
			return fmt.Errorf("index of m %s, want m:3/0/3/3", got)
		}
		return nil
	})
}

// TestReadIndexRange runs the examples of §10 over partition keys, and
// pagination.
func TestReadIndexRange(t *testing.T) {
	ts := startServer(t)
	for _, pk := range []string{"a", "b", "c", "d.1", "d.2", "e"} {
		ts.put(pk, "s", "v", "")
	}
	eventually(t, func() error {
		if n := len(ts.index("").PartitionKeys); n != 6 {
			return fmt.Errorf("%d partitions listed, want 6", n)
		}
		return nil
	})
	tests := []struct {
		query     string
		keys      string
		more      bool
		nextStart *string
	}{
		{"", "a b c d.1 d.2 e", false, nil},
		{"start=c&end=dynamite", "c d.1 d.2", false, nil},
		{"start=c&reverse=true&end=a", "c b", false, nil},
		{"limit=1", "a", true, strp("b")},
		{"prefix=d", "d.1 d.2", false, nil},
		{"prefix=d.&reverse=true", "d.2 d.1", false, nil},
		{"prefix=d.&limit=2", "d.1 d.2", false, nil},
		{"limit=0", "", true, strp("a")},
		{"reverse=true&limit=2", "e d.2", true, strp("d.1")},
		{"start=cc", "d.1 d.2 e", false, nil},
		{"start=cc&reverse=true", "c b a", false, nil},
		{"end=c", "a b", false, nil},
		{"end=c&reverse=true", "e d.2 d.1", false, nil},
		{"prefix=d&start=d.2", "d.2", false, nil},
		{"prefix=x", "", false, nil},
		{"limit=6", "a b c d.1 d.2 e", false, nil},
		{"limit=5", "a b c d.1 d.2", true, strp("e")},
	}
	for _, tt := range tests {
		ix := ts.index(tt.query)
		if got := strings.Join(indexKeys(ix), " "); got != tt.keys || ix.More != tt.more || showStr(ix.NextStart) != showStr(tt.nextStart) {
			t.Errorf("ReadIndex ?%s = [%s] more=%v nextStart=%s, want [%s] more=%v nextStart=%s",
				tt.query, got, ix.More, showStr(ix.NextStart), tt.keys, tt.more, showStr(tt.nextStart))
		}
	}
	// start must begin with prefix
	r := ts.do("GET", "/app?prefix=a&start=bx", nil)
	wantError(t, "prefix=a&start=bx", r, 400, "InvalidRequest")

	// pagination with nextStart, both directions
	for _, dir := range []string{"", "&reverse=true"} {
		var all []string
		start := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("pagination does not end")
			}
			q := "limit=2" + dir
			if start != "" {
				q += "&start=" + start
			}
			ix := ts.index(q)
			all = append(all, indexKeys(ix)...)
			if !ix.More {
				break
			}
			start = *ix.NextStart
		}
		want := []string{"a", "b", "c", "d.1", "d.2", "e"}
		if dir != "" {
			slices.Reverse(want)
		}
		if !slices.Equal(all, want) {
			t.Errorf("pages of 2%s: %v, want %v", dir, all, want)
		}
	}
}
