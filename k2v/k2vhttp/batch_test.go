package k2vhttp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// seed writes one item per sort key in partition pk, its value being the
// sort key, with InsertBatch.
func (ts *testServer) seed(pk string, sks ...string) {
	ts.t.Helper()
	var items []map[string]any
	for _, sk := range sks {
		items = append(items, map[string]any{"pk": pk, "sk": sk, "v": base64.StdEncoding.EncodeToString([]byte(sk))})
	}
	b, _ := json.Marshal(items)
	ts.insertBatch(string(b))
}

// ---- §8.1 InsertBatch ----

func TestInsertBatch(t *testing.T) {
	ts := startServer(t)
	// the example of §8.1
	ts.insertBatch(`[
  { "pk": "mailbox:INBOX", "sk": "001892831", "ct": "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", "v": "aGVsbG8=" },
  { "pk": "mailbox:INBOX", "sk": "001892912", "ct": null, "v": "d29ybGQ=" },
  { "pk": "mailbox:INBOX", "sk": "001892932", "ct": "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ", "v": null }
]`)
	for sk, want := range map[string]string{"001892831": `["hello"]`, "001892912": `["world"]`, "001892932": `[null]`} {
		if got, _ := ts.read("mailbox:INBOX", sk); got != want {
			t.Errorf("example item %s: %s, want %s", sk, got, want)
		}
	}

	// ct and v omitted or null: a tombstone written without context
	ts.put("p", "omit", "old", "")
	ts.insertBatch(`[{"pk":"p","sk":"omit"},{"pk":"p","sk":"nulls","ct":null,"v":null},{"pk":"p","sk":"new","v":"eA=="}]`)
	for sk, want := range map[string]string{"omit": `["old",null]`, "nulls": `[null]`, "new": `["x"]`} {
		if got, _ := ts.read("p", sk); got != want {
			t.Errorf("item %s: %s, want %s", sk, got, want)
		}
	}
	// with ct: replaces what the token covers; v null deletes
	_, tok := ts.read("p", "new")
	ts.put("p", "del", "gone", "")
	_, tokDel := ts.read("p", "del")
	b, _ := json.Marshal([]map[string]any{
		{"pk": "p", "sk": "new", "ct": tok, "v": "eQ=="},
		{"pk": "p", "sk": "del", "ct": tokDel, "v": nil},
		{"pk": "other", "sk": "x", "v": ""},
	})
	ts.insertBatch(string(b))
	for _, c := range []struct{ pk, sk, want string }{{"p", "new", `["y"]`}, {"p", "del", `[null]`}, {"other", "x", `[""]`}} {
		if got, _ := ts.read(c.pk, c.sk); got != c.want {
			t.Errorf("item %s/%s: %s, want %s", c.pk, c.sk, got, c.want)
		}
	}
	// an empty array, unknown fields, empty keys (§13: writable by
	// InsertBatch, listed by ReadBatch)
	ts.insertBatch(`[]`)
	ts.insertBatch(` [ ] `)
	ts.insertBatch(`[{"pk":"p","sk":"extra","v":"eg==","unknown":[1,{"a":null}],"V":"!!"}]`)
	if got, _ := ts.read("p", "extra"); got != `["z"]` {
		t.Errorf("item with unknown fields: %s, want [z]", got)
	}
	ts.insertBatch(`[{"pk":"","sk":"","v":"ZW1wdHk="}]`)
	res := ts.readBatch(`[{"partitionKey":""}]`)
	if len(res[0].Items) != 1 || res[0].Items[0].SK != "" || showValues(t, res[0].Items[0].V) != `["empty"]` {
		t.Errorf("empty keys: %+v, want one item with sk \"\" and value empty", res[0].Items)
	}
	// the response: 204, empty body
	r := ts.do("POST", "/app", []byte(`[{"pk":"p","sk":"r","v":"cg=="}]`))
	if r.status != 204 || len(r.body) != 0 {
		t.Errorf("InsertBatch response %d %q, want 204, empty", r.status, r.body)
	}
}

// TestInsertBatchInvalid: every invalid body is refused with 400 and
// nothing of the batch is written (§8.1: all tokens and values are
// validated before anything is written).
func TestInsertBatchInvalid(t *testing.T) {
	ts := startServer(t)
	const ok = `{"pk":"p","sk":"ok","v":"dg=="}`
	tests := []struct {
		name, body string
		msg        string // message prefix
	}{
		{"missing padding", `[` + ok + `,{"pk":"p","sk":"bad","v":"aGVsbG8"}]`, "Invalid base64"},
		{"non-zero trailing bits", `[` + ok + `,{"pk":"p","sk":"bad","v":"aGVsbG9="}]`, "Invalid base64"},
		{"URL-safe alphabet", `[` + ok + `,{"pk":"p","sk":"bad","v":"-_8="}]`, "Invalid base64"},
		{"space inside", `[` + ok + `,{"pk":"p","sk":"bad","v":"aGVs bG8="}]`, "Invalid base64"},
		{"only padding", `[` + ok + `,{"pk":"p","sk":"bad","v":"===="}]`, "Invalid base64"},
		{"too much padding", `[` + ok + `,{"pk":"p","sk":"bad","v":"dg==="}]`, "Invalid base64"},
		{"one char", `[` + ok + `,{"pk":"p","sk":"bad","v":"d"}]`, "Invalid base64"},
		{"malformed JSON", `[` + ok + `,{"pk":"p","sk":}]`, "Invalid JSON"},
		{"truncated", `[` + ok, "Invalid JSON"},
		{"empty body", ``, "Invalid JSON"},
		{"trailing garbage", `[` + ok + `] x`, "Invalid JSON"},
		{"two arrays", `[` + ok + `][]`, "Invalid JSON"},
		{"object, not array", ok, "Invalid JSON"},
		{"string, not array", `"x"`, "Invalid JSON"},
		{"null element", `[` + ok + `,null]`, "Invalid JSON"},
		{"number element", `[` + ok + `,1]`, "Invalid JSON"},
		{"array element", `[` + ok + `,[]]`, "Invalid JSON"},
		{"pk number", `[` + ok + `,{"pk":1,"sk":"s"}]`, "Invalid JSON"},
		{"sk boolean", `[` + ok + `,{"pk":"p","sk":true}]`, "Invalid JSON"},
		{"v number", `[` + ok + `,{"pk":"p","sk":"s","v":5}]`, "Invalid JSON"},
		{"v array", `[` + ok + `,{"pk":"p","sk":"s","v":["dg=="]}]`, "Invalid JSON"},
		{"ct number", `[` + ok + `,{"pk":"p","sk":"s","ct":7}]`, "Invalid JSON"},
		{"missing pk", `[` + ok + `,{"sk":"s","v":"dg=="}]`, "Invalid JSON"},
		{"missing sk", `[` + ok + `,{"pk":"p","v":"dg=="}]`, "Invalid JSON"},
		{"null pk", `[` + ok + `,{"pk":null,"sk":"s"}]`, "Invalid JSON"},
		{"null sk", `[` + ok + `,{"pk":"p","sk":null}]`, "Invalid JSON"},
		{"field names are case-sensitive", `[` + ok + `,{"PK":"p","sk":"s","v":"dg=="}]`, "Invalid JSON"},
		{"Sk", `[` + ok + `,{"pk":"p","Sk":"s","v":"dg=="}]`, "Invalid JSON"},
		{"invalid UTF-8", "[" + ok + ",{\"pk\":\"p\xff\",\"sk\":\"s\"}]", "Invalid JSON"},
		{"invalid UTF-8 outside strings", "[" + ok + "]\xff", "Invalid JSON"},
	}
	for _, tt := range tests {
		r := ts.do("POST", "/app", []byte(tt.body))
		e := wantError(t, tt.name, r, 400, "InvalidRequest")
		wantMessage(t, tt.name, e, tt.msg)
	}
	ts.mustBeMissing("invalid batches", "p", "ok")
	ts.mustBeMissing("invalid batches", "p", "bad")
	ts.mustBeMissing("invalid batches", "p", "s")
}

// TestInsertBatchBase64Newline: line breaks are not part of padded
// standard base64 (RFC 4648 §4; §8.1 "invalid base64 → 400"), even
// though some decoders skip them.
func TestInsertBatchBase64Newline(t *testing.T) {
	ts := startServer(t)
	for _, v := range []string{`aGVsbG8=\n`, `aGVs\nbG8=`, `aGVs\r\nbG8=`, `\naGVsbG8=`} {
		body := `[{"pk":"p","sk":"ok","v":"dg=="},{"pk":"p","sk":"bad","v":"` + v + `"}]`
		r := ts.do("POST", "/app", []byte(body))
		e := wantError(t, "value "+v, r, 400, "InvalidRequest")
		wantMessage(t, "value "+v, e, "Invalid base64")
	}
	ts.mustBeMissing("base64 with line breaks", "p", "ok")
	ts.mustBeMissing("base64 with line breaks", "p", "bad")
}

// TestBatchBodyNull: a JSON null is not an array: "a wrong JSON type →
// 400 Invalid JSON" (§2.4), for every batch endpoint.
func TestBatchBodyNull(t *testing.T) {
	ts := startServer(t)
	for _, send := range []struct{ method, path string }{
		{"POST", "/app"}, {"POST", "/app?search"}, {"SEARCH", "/app"}, {"POST", "/app?delete"}, {"POST", "/app/pk?poll_range"},
	} {
		for _, body := range []string{`null`, ` null `} {
			what := send.method + " " + send.path + " " + body
			r := ts.do(send.method, send.path, []byte(body))
			e := wantError(t, what, r, 400, "InvalidRequest")
			wantMessage(t, what, e, "Invalid JSON")
		}
	}
}

// ---- §8.2 ReadBatch ----

// TestReadBatchShape checks the result objects: the nine echoed fields
// with their defaults, then items, more, nextStart; items with sk, ct, v.
func TestReadBatchShape(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "b")
	ts.put("pk", "b", "second", "")
	_, tokA := ts.read("pk", "a")
	for _, send := range []struct{ method, path string }{{"POST", "/app?search"}, {"SEARCH", "/app"}, {"POST", "/app?search=yes"}} {
		r := ts.do(send.method, send.path, []byte(`[
			{"partitionKey": "pk"},
			{"partitionKey": "pk", "prefix": "a", "start": "a", "end": "b", "limit": 7, "reverse": false, "conflictsOnly": false, "tombstones": true},
			{"partitionKey": "pk", "start": "b", "limit": 1, "reverse": true, "conflictsOnly": true},
			{"partitionKey": "pk", "start": "a", "singleItem": true},
			{"partitionKey": "pk", "prefix": null, "start": null, "end": null, "limit": null, "unknown": 1}
		]`))
		what := send.method + " " + send.path
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s %s", what, r.status, r.header.Get("Content-Type"), r.body)
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 5 {
			t.Fatalf("%s: %s is not an array of 5 results", what, r.body)
		}
		wantKeys := []string{"conflictsOnly", "end", "items", "limit", "more", "nextStart", "partitionKey", "prefix", "reverse", "singleItem", "start", "tombstones"}
		wantEcho := []string{
			`{"conflictsOnly":false,"end":null,"limit":null,"partitionKey":"pk","prefix":null,"reverse":false,"singleItem":false,"start":null,"tombstones":false}`,
			`{"conflictsOnly":false,"end":"b","limit":7,"partitionKey":"pk","prefix":"a","reverse":false,"singleItem":false,"start":"a","tombstones":true}`,
			`{"conflictsOnly":true,"end":null,"limit":1,"partitionKey":"pk","prefix":null,"reverse":true,"singleItem":false,"start":"b","tombstones":false}`,
			`{"conflictsOnly":false,"end":null,"limit":null,"partitionKey":"pk","prefix":null,"reverse":false,"singleItem":true,"start":"a","tombstones":false}`,
			`{"conflictsOnly":false,"end":null,"limit":null,"partitionKey":"pk","prefix":null,"reverse":false,"singleItem":false,"start":null,"tombstones":false}`,
		}
		wantItems := []string{
			`{"items":[{"sk":"a","v":["a"]},{"sk":"b","v":["b","second"]}],"more":false,"nextStart":null}`,
			`{"items":[{"sk":"a","v":["a"]}],"more":false,"nextStart":null}`,
			`{"items":[{"sk":"b","v":["b","second"]}],"more":false,"nextStart":null}`,
			`{"items":[{"sk":"a","v":["a"]}],"more":false,"nextStart":null}`,
			`{"items":[{"sk":"a","v":["a"]},{"sk":"b","v":["b","second"]}],"more":false,"nextStart":null}`,
		}
		for i, res := range raw {
			if keys := jsonKeys(t, res); !slices.Equal(keys, wantKeys) {
				t.Errorf("%s result %d: members %v, want %v", what, i, keys, wantKeys)
			}
			var m map[string]json.RawMessage
			json.Unmarshal(res, &m)
			echo := map[string]json.RawMessage{}
			for _, k := range wantKeys {
				if k != "items" && k != "more" && k != "nextStart" {
					echo[k] = m[k]
				}
			}
			if got, _ := json.Marshal(echo); compactJSON(t, string(got)) != wantEcho[i] {
				t.Errorf("%s result %d: echo %s, want %s", what, i, compactJSON(t, string(got)), wantEcho[i])
			}
			// items: exactly sk, ct, v; ct is the ReadItem token
			var rest struct {
				Items     []json.RawMessage `json:"items"`
				More      bool              `json:"more"`
				NextStart *string           `json:"nextStart"`
			}
			json.Unmarshal(res, &rest)
			var shown []map[string]any
			for _, it := range rest.Items {
				if keys := jsonKeys(t, it); !slices.Equal(keys, []string{"ct", "sk", "v"}) {
					t.Errorf("%s result %d: item members %v, want ct, sk, v", what, i, keys)
				}
				var bi batchItemJSON
				json.Unmarshal(it, &bi)
				if bi.SK == "a" && bi.CT != tokA {
					t.Errorf("%s result %d: ct of a %q, want the ReadItem token %q", what, i, bi.CT, tokA)
				}
				var vals []string
				json.Unmarshal([]byte(showValues(t, bi.V)), &vals)
				shown = append(shown, map[string]any{"sk": bi.SK, "v": vals})
			}
			if shown == nil {
				shown = []map[string]any{}
			}
			got, _ := json.Marshal(map[string]any{"items": shown, "more": rest.More, "nextStart": rest.NextStart})
			if compactJSON(t, string(got)) != compactJSON(t, wantItems[i]) {
				t.Errorf("%s result %d: %s, want %s", what, i, got, wantItems[i])
			}
		}
	}
	// an empty array of searches
	r := ts.do("SEARCH", "/app", []byte(`[]`))
	if r.status != 200 || compactJSON(t, string(r.body)) != `[]` {
		t.Errorf("ReadBatch []: %d %s, want 200 []", r.status, r.body)
	}
	// items is an empty array, not null, for an empty partition
	r = ts.do("POST", "/app?search", []byte(`[{"partitionKey":"none"}]`))
	var res []map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &res); err != nil || len(res) != 1 || string(res[0]["items"]) != "[]" {
		t.Errorf("ReadBatch of an empty partition: %s, want items []", r.body)
	}
}

// rangeCase is one search over sort keys and its expected outcome.
type rangeCase struct {
	search    string
	items     string // sort keys, space-separated; "400" for an error
	more      bool
	nextStart *string
}

func (ts *testServer) checkRanges(t *testing.T, pk string, tests []rangeCase) {
	t.Helper()
	for _, tt := range tests {
		search := strings.Replace(tt.search, "{", `{"partitionKey":"`+pk+`",`, 1)
		search = strings.Replace(search, ",}", "}", 1)
		if tt.items == "400" {
			r := ts.do("POST", "/app?search", []byte("["+search+"]"))
			wantError(t, search, r, 400, "InvalidRequest")
			continue
		}
		res := ts.readBatch("[" + search + "]")
		if len(res) != 1 {
			t.Fatalf("%s: %d results", search, len(res))
		}
		got := strings.Join(sortKeys(res[0].Items), " ")
		if got != tt.items || res[0].More != tt.more || showStr(res[0].NextStart) != showStr(tt.nextStart) {
			t.Errorf("%s = [%s] more=%v nextStart=%s, want [%s] more=%v nextStart=%s",
				search, got, res[0].More, showStr(res[0].NextStart), tt.items, tt.more, showStr(tt.nextStart))
		}
	}
}

// TestRangeExamples is the example table of §10, plus the other rules of
// §10, over ReadBatch.
func TestRangeExamples(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "e", "d.2", "c", "a", "d.1", "b")
	ts.seed("other", "a", "b", "c")
	ts.checkRanges(t, "pk", []rangeCase{
		// the table of §10
		{`{}`, "a b c d.1 d.2 e", false, nil},
		{`{"start":"c", "end":"dynamite"}`, "c d.1 d.2", false, nil},
		{`{"start":"c", "reverse":true, "end":"a"}`, "c b", false, nil},
		{`{"limit":1}`, "a", true, strp("b")},
		{`{"prefix":"d"}`, "d.1 d.2", false, nil},
		{`{"prefix":"d.", "reverse":true}`, "d.2 d.1", false, nil},
		{`{"prefix":"d.", "limit":2}`, "d.1 d.2", false, nil},
		{`{"prefix":"a", "start":"bx"}`, "400", false, nil},
		// more of §10
		{`{"limit":0}`, "", true, strp("a")},
		{`{"prefix":"d", "limit":0}`, "", true, strp("d.1")},
		{`{"prefix":"x", "limit":0}`, "", false, nil},
		{`{"reverse":true}`, "e d.2 d.1 c b a", false, nil},
		{`{"reverse":true, "limit":2}`, "e d.2", true, strp("d.1")},
		{`{"prefix":"d", "reverse":true, "limit":1}`, "d.2", true, strp("d.1")},
		{`{"prefix":"d.", "start":"d.1", "reverse":true}`, "d.1", false, nil},
		{`{"prefix":"d.", "start":"d.2"}`, "d.2", false, nil},
		{`{"prefix":"d.", "start":"d.", "reverse":true}`, "", false, nil},
		{`{"start":"cz"}`, "d.1 d.2 e", false, nil},
		{`{"start":"cz", "reverse":true}`, "c b a", false, nil},
		{`{"start":"zz", "reverse":true, "limit":1}`, "e", true, strp("d.2")},
		{`{"end":"c"}`, "a b", false, nil},
		{`{"end":"c", "reverse":true}`, "e d.2 d.1", false, nil},
		{`{"start":"b", "end":"b"}`, "", false, nil},
		{`{"start":"c", "end":"b"}`, "", false, nil},
		{`{"start":"a", "end":"d", "limit":3}`, "a b c", false, nil},
		{`{"limit":6}`, "a b c d.1 d.2 e", false, nil},
		{`{"limit":5}`, "a b c d.1 d.2", true, strp("e")},
		{`{"prefix":""}`, "a b c d.1 d.2 e", false, nil},
		{`{"prefix":"", "reverse":true, "limit":1}`, "e", true, strp("d.2")},
		{`{"prefix":"a", "start":"a"}`, "a", false, nil},
		{`{"prefix":"d.", "start":"d"}`, "400", false, nil},
		// exactly limit items, then end, prefix or exhaustion: more=false
		{`{"start":"b", "end":"d.2", "limit":3}`, "b c d.1", false, nil},
		{`{"start":"d.2", "reverse":true, "end":"b", "limit":3}`, "d.2 d.1 c", false, nil},
		{`{"prefix":"d.", "reverse":true, "limit":2}`, "d.2 d.1", false, nil},
		{`{"start":"d.1", "limit":3}`, "d.1 d.2 e", false, nil},
	})
	// keys sort by the bytes of their UTF-8 encoding (§1); a prefix whose
	// last character is multi-byte, in reverse
	ts.seed("utf8", "d", "é", "é1", "é2", "ê", "z", "\U0010FFFF", "\uFFFF")
	ts.checkRanges(t, "utf8", []rangeCase{
		{`{}`, "d z é é1 é2 ê \uFFFF \U0010FFFF", false, nil},
		{`{"prefix":"é", "reverse":true}`, "é2 é1 é", false, nil},
		{`{"prefix":"é"}`, "é é1 é2", false, nil},
		{`{"reverse":true, "end":"é1"}`, "\U0010FFFF \uFFFF ê é2", false, nil},
		{`{"start":"é1", "reverse":true, "limit":2}`, "é1 é", true, strp("z")},
	})
	// several searches: one result each, in order; a failing one fails all
	res := ts.readBatch(`[{"partitionKey":"other","reverse":true},{"partitionKey":"pk","limit":1},{"partitionKey":"none"}]`)
	got := fmt.Sprint(sortKeys(res[0].Items), sortKeys(res[1].Items), sortKeys(res[2].Items))
	if got != "[c b a] [a] []" {
		t.Errorf("three searches: %s, want [c b a] [a] []", got)
	}
	r := ts.do("POST", "/app?search", []byte(`[{"partitionKey":"pk"},{"partitionKey":"pk","prefix":"a","start":"b"}]`))
	wantError(t, "a failing search among others", r, 400, "InvalidRequest")
}

// TestReadBatchPagination continues listings with nextStart (§10).
func TestReadBatchPagination(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "b", "c", "d.1", "d.2", "d.3", "e")
	for _, tt := range []struct {
		search string // without start
		want   string
	}{
		{`"limit":2`, "a b c d.1 d.2 d.3 e"},
		{`"limit":2,"reverse":true`, "e d.3 d.2 d.1 c b a"},
		{`"limit":1,"prefix":"d."`, "d.1 d.2 d.3"},
		{`"limit":2,"prefix":"d.","reverse":true`, "d.3 d.2 d.1"},
		{`"limit":1,"end":"d.2","reverse":true`, "e d.3"},
		{`"limit":3,"conflictsOnly":false,"end":"d.2"`, "a b c d.1"},
	} {
		var all []string
		start := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("%s: pagination does not end", tt.search)
			}
			s := `{"partitionKey":"pk",` + tt.search
			if start != "" {
				b, _ := json.Marshal(start)
				s += `,"start":` + string(b)
			}
			res := ts.readBatch("[" + s + "}]")
			all = append(all, sortKeys(res[0].Items)...)
			if !res[0].More {
				if res[0].NextStart != nil {
					t.Errorf("%s: more=false with nextStart %s", s, *res[0].NextStart)
				}
				break
			}
			if res[0].NextStart == nil {
				t.Fatalf("%s: more=true without nextStart", s)
			}
			start = *res[0].NextStart
		}
		if got := strings.Join(all, " "); got != tt.want {
			t.Errorf("pages of {%s}: %s, want %s", tt.search, got, tt.want)
		}
	}
}

// TestReadBatchFilters: conflictsOnly and tombstones, applied before limit.
func TestReadBatchFilters(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "b", "c", "d", "x")
	ts.put("pk", "b", "b2", "") // conflict
	ts.put("pk", "d", "d2", "") // conflict
	ts.del("pk", "t", "")       // tombstone
	ts.del("pk", "u", "")       // tombstone
	ts.del("pk", "x", "")       // ["x", null]: a conflict, not deleted
	ts.checkRanges(t, "pk", []rangeCase{
		{`{}`, "a b c d x", false, nil},
		{`{"conflictsOnly":true}`, "b d x", false, nil},
		{`{"tombstones":true}`, "a b c d t u x", false, nil},
		{`{"conflictsOnly":true, "tombstones":true}`, "b d x", false, nil},
		{`{"conflictsOnly":true, "limit":1}`, "b", true, strp("d")},
		{`{"conflictsOnly":true, "limit":2}`, "b d", true, strp("x")},
		{`{"conflictsOnly":true, "limit":3}`, "b d x", false, nil},
		{`{"conflictsOnly":true, "limit":1, "reverse":true}`, "x", true, strp("d")},
		{`{"tombstones":true, "limit":5}`, "a b c d t", true, strp("u")},
		{`{"start":"e", "limit":1}`, "x", false, nil},
		{`{"start":"t", "limit":0}`, "", true, strp("x")},
		{`{"start":"t", "limit":0, "tombstones":true}`, "", true, strp("t")},
		{`{"prefix":"t"}`, "", false, nil},
		{`{"prefix":"t", "tombstones":true}`, "t", false, nil},
	})
	res := ts.readBatch(`[{"partitionKey":"pk","tombstones":true,"start":"t"}]`)
	var shown []string
	for _, it := range res[0].Items {
		shown = append(shown, it.SK+"="+showValues(t, it.V))
	}
	if got := strings.Join(shown, " "); got != `t=[null] u=[null] x=["x",null]` {
		t.Errorf("values with tombstones: %s", got)
	}
}

// TestReadBatchSingleItem checks the singleItem rules of §8.2.
func TestReadBatchSingleItem(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "c")
	ts.put("pk", "c", "c2", "")
	ts.del("pk", "t", "")
	ts.insertBatch(`[{"pk":"pk","sk":"","v":"ZW1wdHk="}]`)
	for _, bad := range []string{
		`{"partitionKey":"pk","singleItem":true}`,
		`{"partitionKey":"pk","singleItem":true,"start":null}`,
		`{"partitionKey":"pk","singleItem":true,"start":"a","prefix":"a"}`,
		`{"partitionKey":"pk","singleItem":true,"start":"a","end":"b"}`,
		`{"partitionKey":"pk","singleItem":true,"start":"a","limit":1}`,
		`{"partitionKey":"pk","singleItem":true,"start":"a","limit":0}`,
		`{"partitionKey":"pk","singleItem":true,"start":"a","reverse":true}`,
	} {
		r := ts.do("POST", "/app?search", []byte("["+bad+"]"))
		wantError(t, bad, r, 400, "InvalidRequest")
	}
	ts.checkRanges(t, "pk", []rangeCase{
		{`{"singleItem":true, "start":"a"}`, "a", false, nil},
		{`{"singleItem":true, "start":"a", "reverse":false, "limit":null, "prefix":null, "end":null}`, "a", false, nil},
		{`{"singleItem":true, "start":"b"}`, "", false, nil},
		{`{"singleItem":true, "start":"t"}`, "", false, nil},
		{`{"singleItem":true, "start":"t", "tombstones":true}`, "t", false, nil},
		{`{"singleItem":true, "start":"a", "conflictsOnly":true}`, "", false, nil},
		{`{"singleItem":true, "start":"c", "conflictsOnly":true}`, "c", false, nil},
		{`{"singleItem":true, "start":""}`, "", false, nil},
	})
	// the item with the empty sort key: sk is ""
	res := ts.readBatch(`[{"partitionKey":"pk","singleItem":true,"start":""}]`)
	if len(res[0].Items) != 1 || res[0].Items[0].SK != "" || showValues(t, res[0].Items[0].V) != `["empty"]` {
		t.Errorf("singleItem with start \"\": %+v, want the item with sort key \"\"", res[0].Items)
	}
	res = ts.readBatch(`[{"partitionKey":"pk","singleItem":true,"start":"c"}]`)
	_, tok := ts.read("pk", "c")
	if len(res[0].Items) != 1 || res[0].Items[0].CT != tok || showValues(t, res[0].Items[0].V) != `["c","c2"]` {
		t.Errorf("singleItem c: %+v, want [c c2] with ct %s", res[0].Items, tok)
	}
}

// TestReadBatchInvalid: malformed searches → 400 "Invalid JSON".
func TestReadBatchInvalid(t *testing.T) {
	ts := startServer(t)
	for _, body := range []string{
		``, `[`, `{}`, `[null]`, `[1]`, `[{}]`,
		`[{"partitionKey":null}]`,
		`[{"partitionKey":1}]`,
		`[{"PartitionKey":"pk"}]`,
		`[{"partitionkey":"pk"}]`,
		`[{"partitionKey":"pk","limit":"1"}]`,
		`[{"partitionKey":"pk","limit":-1}]`,
		`[{"partitionKey":"pk","limit":1.5}]`,
		`[{"partitionKey":"pk","limit":18446744073709551616}]`,
		`[{"partitionKey":"pk","reverse":"true"}]`,
		`[{"partitionKey":"pk","reverse":null}]`,
		`[{"partitionKey":"pk","reverse":1}]`,
		`[{"partitionKey":"pk","singleItem":"yes"}]`,
		`[{"partitionKey":"pk","conflictsOnly":0}]`,
		`[{"partitionKey":"pk","tombstones":[]}]`,
		`[{"partitionKey":"pk","prefix":5}]`,
		`[{"partitionKey":"pk","start":true}]`,
		`[{"partitionKey":"pk","end":{}}]`,
		"[{\"partitionKey\":\"\xc3\"}]",
		`[{"partitionKey":"pk"}] []`,
	} {
		for _, send := range []struct{ method, path string }{{"POST", "/app?search"}, {"SEARCH", "/app"}} {
			r := ts.do(send.method, send.path, []byte(body))
			e := wantError(t, send.method+" "+body, r, 400, "InvalidRequest")
			wantMessage(t, send.method+" "+body, e, "Invalid JSON")
		}
	}
}

// TestManySearches: one ReadBatch or DeleteBatch of 1000 searches (grange
// caps the searches of one call at 1000, server.go maxSearches).
func TestManySearches(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a")
	var searches []map[string]any
	for i := range maxSearches {
		searches = append(searches, map[string]any{"partitionKey": "pk", "start": fmt.Sprint(i % 2)})
	}
	res := ts.readBatch(mustJSON(searches))
	if len(res) != maxSearches || len(res[0].Items) != 1 || len(res[maxSearches-1].Items) != 1 {
		t.Errorf("ReadBatch of %d searches: %d results", maxSearches, len(res))
	}
	if got := ts.deleteBatch(mustJSON(searches)); len(got) != maxSearches || got[0] != 1 || got[1] != 0 {
		t.Errorf("DeleteBatch of %d searches: %d results, first %v", maxSearches, len(got), got[:min(len(got), 2)])
	}
}

// ---- §8.3 DeleteBatch ----

type deleteResultJSON struct {
	PartitionKey string  `json:"partitionKey"`
	Prefix       *string `json:"prefix"`
	Start        *string `json:"start"`
	End          *string `json:"end"`
	SingleItem   bool    `json:"singleItem"`
	DeletedItems int     `json:"deletedItems"`
}

// deleteBatch runs a DeleteBatch that must succeed, returning the counts.
func (ts *testServer) deleteBatch(body string) []int {
	ts.t.Helper()
	r := ts.do("POST", "/app?delete", []byte(body))
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		ts.t.Fatalf("DeleteBatch %s: %d %s", body, r.status, r.body)
	}
	var out []deleteResultJSON
	if err := json.Unmarshal(r.body, &out); err != nil {
		ts.t.Fatalf("DeleteBatch %s: %v", body, err)
	}
	var n []int
	for _, res := range out {
		n = append(n, res.DeletedItems)
	}
	return n
}

func TestDeleteBatch(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "b", "c", "d.1", "d.2", "e")
	ts.seed("q", "1", "2", "3")
	ts.seed("keep", "a")

	// the response shape
	r := ts.do("POST", "/app?delete", []byte(`[
		{"partitionKey":"pk","prefix":"d."},
		{"partitionKey":"pk","start":"a","singleItem":true},
		{"partitionKey":"pk","start":"b","end":"c","limit":0,"reverse":true,"tombstones":true,"unknown":1}
	]`))
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("DeleteBatch: %d %s", r.status, r.body)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 3 {
		t.Fatalf("DeleteBatch: %s", r.body)
	}
	want := []string{
		`{"deletedItems":2,"end":null,"partitionKey":"pk","prefix":"d.","singleItem":false,"start":null}`,
		`{"deletedItems":1,"end":null,"partitionKey":"pk","prefix":null,"singleItem":true,"start":"a"}`,
		`{"deletedItems":1,"end":"c","partitionKey":"pk","prefix":null,"singleItem":false,"start":"b"}`,
	}
	for i := range raw {
		if got := compactJSON(t, string(raw[i])); got != want[i] {
			t.Errorf("DeleteBatch result %d: %s, want %s", i, got, want[i])
		}
	}
	ts.checkRanges(t, "pk", []rangeCase{
		{`{}`, "c e", false, nil},
		{`{"tombstones":true}`, "a b c d.1 d.2 e", false, nil},
	})
	res := ts.readBatch(`[{"partitionKey":"pk","tombstones":true,"start":"d.1","limit":1}]`)
	if v := showValues(t, res[0].Items[0].V); v != `[null]` {
		t.Errorf("deleted item d.1: %s, want [null]", v)
	}
	// repeating counts nothing: only non-deleted items are counted
	if got := ts.deleteBatch(`[{"partitionKey":"pk","prefix":"d."},{"partitionKey":"pk","start":"a","singleItem":true}]`); fmt.Sprint(got) != "[0 0]" {
		t.Errorf("repeated DeleteBatch: %v, want [0 0]", got)
	}
	// limit and reverse are ignored
	if got := ts.deleteBatch(`[{"partitionKey":"q","limit":1,"reverse":true}]`); fmt.Sprint(got) != "[3]" {
		t.Errorf("DeleteBatch with limit 1: %v, want [3]", got)
	}
	// singleItem: limit and reverse ignored there too; a missing item is 0
	if got := ts.deleteBatch(`[{"partitionKey":"pk","start":"c","singleItem":true,"limit":5,"reverse":true},{"partitionKey":"pk","start":"zz","singleItem":true}]`); fmt.Sprint(got) != "[1 0]" {
		t.Errorf("singleItem deletes: %v, want [1 0]", got)
	}
	// a conflicting item: every version read is deleted
	ts.seed("conf", "x")
	ts.put("conf", "x", "x2", "")
	ts.put("conf", "y", "y", "")
	ts.del("conf", "y", "") // ["y", null], not deleted
	if got := ts.deleteBatch(`[{"partitionKey":"conf"}]`); fmt.Sprint(got) != "[2]" {
		t.Errorf("DeleteBatch of conflicts: %v, want [2]", got)
	}
	for _, sk := range []string{"x", "y"} {
		if got, _ := ts.read("conf", sk); got != `[null]` {
			t.Errorf("conf/%s after DeleteBatch: %s, want [null]", sk, got)
		}
	}
	// other partitions untouched; an empty array
	if got, _ := ts.read("keep", "a"); got != `["a"]` {
		t.Errorf("keep/a: %s", got)
	}
	if got := ts.deleteBatch(`[]`); len(got) != 0 {
		t.Errorf("DeleteBatch []: %v", got)
	}
	// the partitions with only deleted items leave the index
	eventually(t, func() error {
		if got := strings.Join(indexKeys(ts.index("")), " "); got != "keep pk" {
			return fmt.Errorf("index %s, want keep pk", got)
		}
		return nil
	})
}

func TestDeleteBatchInvalid(t *testing.T) {
	ts := startServer(t)
	ts.seed("pk", "a", "b")
	for _, tt := range []struct{ body, msg string }{
		{`[{"partitionKey":"pk","singleItem":true}]`, ""},
		{`[{"partitionKey":"pk","singleItem":true,"start":"a","prefix":"a"}]`, ""},
		{`[{"partitionKey":"pk","singleItem":true,"start":"a","end":"b"}]`, ""},
		{`[{"partitionKey":"pk","prefix":"a","start":"b"}]`, ""},
		{`[{"start":"a"}]`, "Invalid JSON"},
		{`[{"partitionKey":"pk","singleItem":1,"start":"a"}]`, "Invalid JSON"},
		{`[{"partitionKey":"pk","prefix":1}]`, "Invalid JSON"},
		{`{"partitionKey":"pk"}`, "Invalid JSON"},
		{``, "Invalid JSON"},
	} {
		r := ts.do("POST", "/app?delete", []byte(tt.body))
		e := wantError(t, tt.body, r, 400, "InvalidRequest")
		wantMessage(t, tt.body, e, tt.msg)
	}
	if got := strings.Join(sortKeys(ts.readBatch(`[{"partitionKey":"pk"}]`)[0].Items), " "); got != "a b" {
		t.Errorf("after refused DeleteBatches: %s, want a b", got)
	}
	// one invalid search fails the call (whether the valid one ran is not
	// specified: batches are not transactions)
	r := ts.do("POST", "/app?delete", []byte(`[{"partitionKey":"pk"},{"partitionKey":"pk","singleItem":true}]`))
	wantError(t, "DeleteBatch with one invalid search", r, 400, "InvalidRequest")
}
