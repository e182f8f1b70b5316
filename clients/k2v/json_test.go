package k2v

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compact %s: %v", b, err)
	}
	return out.String()
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatalf("%s: invalid JSON %s: %v", name, got, err)
	}
	indented.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readTestdata(t, name)
	if compactJSON(t, want) != string(got) {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", name, indented.Bytes(), want)
	}
}

// asGeneric decodes JSON into maps and slices, to compare documents
// without regard to member order or whitespace.
func asGeneric(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return v
}

func TestInsertBatchRequestMatchesDoc(t *testing.T) {
	ops := []InsertOp{
		{PartitionKey: "mailbox:INBOX", SortKey: "001892831", CausalityToken: "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", Value: Bytes([]byte("hello"))},
		{PartitionKey: "mailbox:INBOX", SortKey: "001892912", Value: Bytes([]byte("world"))},
		{PartitionKey: "mailbox:INBOX", SortKey: "001892932", CausalityToken: "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ", Value: Tombstone()},
	}
	got := string(appendInsertOps(nil, ops))
	if want := compactJSON(t, readTestdata(t, "insertbatch-request.json")); got != want {
		t.Errorf("InsertBatch body:\n got %s\nwant %s", got, want)
	}
}

func TestInsertBatchRequestEdgeCases(t *testing.T) {
	ops := []InsertOp{
		{PartitionKey: "", SortKey: "", Value: Bytes(nil)},                  // empty keys, empty value
		{PartitionKey: "p\"\\\n\x01é", SortKey: "+ /%", Value: Tombstone()}, // escapes
	}
	checkGolden(t, "insertbatch-request-edge.golden.json", appendInsertOps(nil, ops))
	if got := string(appendInsertOps(nil, nil)); got != "[]" {
		t.Errorf("empty InsertBatch body = %s, want []", got)
	}
}

func TestReadBatchResponseDoc(t *testing.T) {
	doc := readTestdata(t, "readbatch-response.json")
	var res []SearchResult
	if err := json.Unmarshal(doc, &res); err != nil {
		t.Fatal(err)
	}
	want := []SearchResult{{
		Search: Search{PartitionKey: "mailbox:INBOX", Start: "001892831", Limit: 3},
		Items: []Item{
			{SortKey: "001892831", CausalityToken: "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", Values: []Value{{Data: []byte("hello")}}},
			{SortKey: "001892832", CausalityToken: "…", Values: []Value{{Data: []byte("world")}, {Tombstone: true}}},
			{SortKey: "001892874", CausalityToken: "…", Values: []Value{{Data: []byte("foo")}}},
		},
		More:      true,
		NextStart: "001892898",
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decoded ReadBatch response:\n got %+v\nwant %+v", res, want)
	}
	if !res[0].Items[1].IsConflict() || res[0].Items[0].IsConflict() {
		t.Error("IsConflict wrong")
	}
}

// TestReadBatchRequestMatchesEcho checks that our encoding of a search is
// exactly what the server echoes for it in the documented example.
func TestReadBatchRequestMatchesEcho(t *testing.T) {
	var echoes []map[string]any
	if err := json.Unmarshal(readTestdata(t, "readbatch-response.json"), &echoes); err != nil {
		t.Fatal(err)
	}
	echo := echoes[0]
	delete(echo, "items")
	delete(echo, "more")
	delete(echo, "nextStart")
	s := Search{PartitionKey: "mailbox:INBOX", Start: "001892831", Limit: 3}
	got := asGeneric(t, appendSearch(nil, &s, false))
	if !reflect.DeepEqual(got, any(echo)) {
		t.Errorf("search encoding %v, want echo %v", got, echo)
	}
}

func TestReadBatchRequestGolden(t *testing.T) {
	searches := []Search{
		{PartitionKey: "mailbox:INBOX"},
		{PartitionKey: "mailbox:INBOX", Prefix: "0018", Start: "001892831", End: "0019", Limit: 3, Reverse: true, ConflictsOnly: true, Tombstones: true},
		{PartitionKey: "p", Start: "", SingleItem: true}, // the empty sort key
		{PartitionKey: "/é \"x\"", Prefix: "a+b"},
	}
	body := []byte{'['}
	for i := range searches {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendSearch(body, &searches[i], false)
	}
	body = append(body, ']')
	checkGolden(t, "readbatch-request.golden.json", body)

	// Round trip: the encoding decodes to the same searches.
	var back []Search
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, searches) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, searches)
	}

	// A continuation at the empty key sends "start":"".
	s := Search{PartitionKey: "p", Reverse: true}
	if got := string(appendSearch(nil, &s, true)); !strings.Contains(got, `"start":""`) {
		t.Errorf("startSet search %s lacks \"start\":\"\"", got)
	}
}

func TestDeleteBatchDoc(t *testing.T) {
	doc := readTestdata(t, "deletebatch-response.json")
	var res []DeleteResult
	if err := json.Unmarshal(doc, &res); err != nil {
		t.Fatal(err)
	}
	want := []DeleteResult{
		{DeleteSearch: DeleteSearch{PartitionKey: "mailbox:OldMailbox"}, DeletedItems: 35},
		{DeleteSearch: DeleteSearch{PartitionKey: "mailbox:INBOX", Start: "0018928321", SingleItem: true}, DeletedItems: 1},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decoded DeleteBatch response:\n got %+v\nwant %+v", res, want)
	}

	// Our request for each search equals the server's echo of it.
	var echoes []map[string]any
	if err := json.Unmarshal(doc, &echoes); err != nil {
		t.Fatal(err)
	}
	body := []byte{'['}
	for i := range want {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendDeleteSearch(body, &want[i].DeleteSearch)
		delete(echoes[i], "deletedItems")
	}
	body = append(body, ']')
	wantEcho, _ := json.Marshal(echoes)
	if got := asGeneric(t, body); !reflect.DeepEqual(got, asGeneric(t, wantEcho)) {
		t.Errorf("DeleteBatch body %s, want echo %s", body, wantEcho)
	}
	checkGolden(t, "deletebatch-request.golden.json", body)
}

func TestReadIndexDoc(t *testing.T) {
	var res ReadIndexResult
	if err := json.Unmarshal(readTestdata(t, "readindex-response.json"), &res); err != nil {
		t.Fatal(err)
	}
	want := ReadIndexResult{PartitionKeys: []PartitionInfo{
		{PartitionKey: "keys", Entries: 3043, Conflicts: 0, Values: 3043, Bytes: 121720},
		{PartitionKey: "mailbox:INBOX", Entries: 42, Conflicts: 1, Values: 43, Bytes: 142029},
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decoded ReadIndex response:\n got %+v\nwant %+v", res, want)
	}
}

func TestPollRangeDoc(t *testing.T) {
	var res PollRangeResult
	if err := json.Unmarshal(readTestdata(t, "pollrange-response.json"), &res); err != nil {
		t.Fatal(err)
	}
	want := PollRangeResult{
		Items: []Item{{SortKey: "0391.000001973221", CausalityToken: "…", Values: []Value{
			{Data: []byte("hello")}, {Data: []byte("world")},
		}}},
		SeenMarker: "KLUv/QBY…",
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decoded PollRange response:\n got %+v\nwant %+v", res, want)
	}
}

func TestPollRangeRequestGolden(t *testing.T) {
	tests := []struct {
		name                string
		prefix, start, end  string
		timeout             int
		marker, wantGeneric string
	}{
		{"empty", "", "", "", 0, "", `{"prefix":null,"start":null,"end":null,"seenMarker":null}`},
		{"full", "0391.", "0391.", "0392", 30, "KLUv/QBY+/=", `{"prefix":"0391.","start":"0391.","end":"0392","timeout":30,"seenMarker":"KLUv/QBY+/="}`},
	}
	for _, tt := range tests {
		got := appendPollRange(nil, tt.prefix, tt.start, tt.end, tt.timeout, tt.marker)
		if string(got) != tt.wantGeneric {
			t.Errorf("%s: PollRange body %s, want %s", tt.name, got, tt.wantGeneric)
		}
	}
}

func TestReadItemJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Value
	}{
		{"doc example", string(readTestdata(t, "readitem-response.json")), []Value{{Data: []byte("hello")}, {Tombstone: true}}},
		{"empty value is not a tombstone", `[""]`, []Value{{Data: []byte{}}}},
		{"tombstone", `[null]`, []Value{{Tombstone: true}}},
		{"binary", `["AP8="]`, []Value{{Data: []byte{0, 255}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Value
			if err := json.Unmarshal([]byte(tt.body), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode %s = %+v, want %+v", tt.body, got, tt.want)
			}
			// And back.
			enc, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if compactJSON(t, []byte(tt.body)) != string(enc) {
				t.Errorf("encode %+v = %s, want %s", got, enc, tt.body)
			}
		})
	}
	if it := (Item{Values: []Value{{Tombstone: true}, {Tombstone: true}}}); !it.IsTombstone() {
		t.Error("all-tombstone item: IsTombstone false")
	}
	if it := (Item{Values: []Value{{Tombstone: true}, {Data: []byte{}}}}); it.IsTombstone() {
		t.Error("item with an empty value: IsTombstone true")
	}
}

func TestValueJSONInvalid(t *testing.T) {
	for _, body := range []string{
		`["aGVsbG8"]`,   // missing padding
		`["aGVs bG8="]`, // space
		`["aGVsbG8_"]`,  // URL-safe alphabet
		`[1]`,
		`[true]`,
		`["\u0061GVsbG8="]`, // escaped form
	} {
		var v []Value
		if err := json.Unmarshal([]byte(body), &v); err == nil {
			t.Errorf("decode %s: no error, got %+v", body, v)
		}
	}
}

func TestErrorBodyDoc(t *testing.T) {
	e := parseErrorBody(404, readTestdata(t, "error-response.json"), "/fallback")
	want := &Error{StatusCode: 404, Code: "NoSuchKey", Message: "Key not found", Region: "garage", Path: "/app/mailboxes"}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("parseErrorBody = %+v, want %+v", e, want)
	}
}

// FuzzAppendJSONString checks the hand-written JSON string encoder against
// encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f\x7f", "é/+%", "\xff", "\u2028<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: invalid JSON: %v", s, enc, err)
		}
		if want := invalidToReplacement(s); got != want {
			t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, got, want)
		}
		ref, _ := json.Marshal(s)
		var refGot string
		if err := json.Unmarshal(ref, &refGot); err != nil || refGot != got {
			t.Errorf("appendJSONString(%q) decodes to %q, encoding/json's to %q", s, got, refGot)
		}
	})
}

// invalidToReplacement replaces each invalid byte with U+FFFD, as
// encoding/json does (strings.ToValidUTF8 merges runs).
func invalidToReplacement(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// FuzzDecodeReadBatch feeds arbitrary bytes to the ReadBatch response
// decoder: it must fail cleanly, never panic.
func FuzzDecodeReadBatch(f *testing.F) {
	f.Add(readTestdata(f, "readbatch-response.json"))
	f.Add([]byte(`[{"items":[{"v":[null,"",1]}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var res []SearchResult
		_ = json.Unmarshal(b, &res)
	})
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add(readTestdata(f, "error-response.json"))
	f.Add([]byte("<html>bad gateway</html>"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := parseErrorBody(502, b, "/p")
		if e.StatusCode != 502 || !utf8.ValidString(e.Message) || e.Error() == "" {
			t.Errorf("parseErrorBody(%q) = %+v", b, e)
		}
	})
}
