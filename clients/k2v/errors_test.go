package k2v

// Status and error mapping tests against CANNED RESPONSES: the httptest
// server below answers every request with a fixed status, headers and
// body chosen by the test. It is not a K2V implementation; it only feeds
// the client's response handling.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

type cannedResponse struct {
	status int
	header map[string]string
	body   string
}

func newStatusClient(t *testing.T, resp cannedResponse) *Client {
	t.Helper()
	return newCannedClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for k, v := range resp.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.status)
		io.WriteString(w, resp.body)
	}))
}

func TestParseErrorBody(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name   string
		status int
		body   string
		want   Error
	}{
		{"k2v body", 403, `{"code":"AccessDenied","message":"Invalid signature","region":"garage","path":"/app/p"}`,
			Error{StatusCode: 403, Code: "AccessDenied", Message: "Invalid signature", Region: "garage", Path: "/app/p"}},
		{"extra fields and no path", 400, `{"code":"InvalidRequest","message":"Bad request: Missing argument","x":1}`,
			Error{StatusCode: 400, Code: "InvalidRequest", Message: "Bad request: Missing argument", Path: "/req"}},
		{"empty body", 502, "", Error{StatusCode: 502, Message: "Bad Gateway", Path: "/req"}},
		{"text body", 503, "upstream down\n", Error{StatusCode: 503, Message: "upstream down", Path: "/req"}},
		{"JSON without code", 500, `{"error":"boom"}`, Error{StatusCode: 500, Message: `{"error":"boom"}`, Path: "/req"}},
		{"long text truncated", 502, long, Error{StatusCode: 502, Message: long[:maxMessageBytes], Path: "/req"}},
		{"binary body", 502, "\xff\xfe\x00", Error{StatusCode: 502, Message: "Bad Gateway", Path: "/req"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrorBody(tt.status, []byte(tt.body), "/req")
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("parseErrorBody = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		err  *Error
		want error
	}{
		{&Error{StatusCode: 404, Code: "NoSuchKey"}, ErrNoSuchKey},
		{&Error{StatusCode: 404, Code: "NoSuchBucket"}, ErrNoSuchBucket},
		{&Error{StatusCode: 403, Code: "AccessDenied"}, ErrAccessDenied},
		{&Error{StatusCode: 400, Code: "InvalidRequest"}, ErrInvalidRequest},
		{&Error{StatusCode: 400, Code: "CausalityToken"}, ErrInvalidCausalityToken},
		{&Error{StatusCode: 400, Code: "AuthorizationHeaderMalformed"}, ErrAuthorizationHeaderMalformed},
		{&Error{StatusCode: 400, Code: "InvalidDigest"}, ErrInvalidDigest},
		{&Error{StatusCode: 400, Code: "InvalidUtf8String"}, ErrInvalidUTF8},
		{&Error{StatusCode: 400, Code: "InvalidHeaderValue"}, ErrInvalidHeaderValue},
		{&Error{StatusCode: 406, Code: "NotAcceptable"}, ErrNotAcceptable},
		{&Error{StatusCode: 500, Code: "InternalError"}, ErrInternal},
		{&Error{StatusCode: 503, Code: "ServiceUnavailable"}, ErrServiceUnavailable},
		// No code: by status.
		{&Error{StatusCode: 503}, ErrServiceUnavailable},
		{&Error{StatusCode: 403}, ErrAccessDenied},
		{&Error{StatusCode: 304}, ErrNotModified},
		{&Error{StatusCode: 404}, nil},
		{&Error{StatusCode: 429, Code: "SlowDown"}, nil},
	}
	all := []error{ErrNoSuchKey, ErrNoSuchBucket, ErrAccessDenied, ErrInvalidRequest, ErrInvalidCausalityToken,
		ErrAuthorizationHeaderMalformed, ErrInvalidDigest, ErrInvalidUTF8, ErrInvalidHeaderValue, ErrNotAcceptable,
		ErrInternal, ErrServiceUnavailable, ErrNotModified, ErrConflict, ErrInvalidArgument}
	for _, tt := range tests {
		for _, s := range all {
			if got := errors.Is(tt.err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%v, %v) = %v", tt.err, s, got)
			}
		}
	}
	e := &Error{StatusCode: 404, Code: "NoSuchKey", Message: "Key not found", Path: "/app/p"}
	if got, want := e.Error(), "k2v: NoSuchKey: Key not found (HTTP 404, path /app/p)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &Error{StatusCode: 502, Message: "Bad Gateway"}
	if got, want := e.Error(), "k2v: HTTP 502: Bad Gateway"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorMappingCanned(t *testing.T) {
	ctx := context.Background()
	t.Run("NoSuchKey", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{404, map[string]string{"Content-Type": "application/json"},
			`{"code":"NoSuchKey","message":"Key not found","region":"garage","path":"/app/p"}`})
		_, err := c.ReadItem(ctx, "p", "s")
		var e *Error
		if !errors.Is(err, ErrNoSuchKey) || !errors.As(err, &e) || e.StatusCode != 404 || e.Region != "garage" || e.Path != "/app/p" {
			t.Errorf("ReadItem error = %#v", err)
		}
	})
	t.Run("proxy error without body", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 503})
		err := c.InsertItem(ctx, "p/q", "s", []byte("v"), "")
		var e *Error
		if !errors.Is(err, ErrServiceUnavailable) || !errors.As(err, &e) || e.Path != "/app/p%2Fq" || e.Code != "" {
			t.Errorf("InsertItem error = %#v", err)
		}
	})
	t.Run("huge error body is capped", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 500, body: strings.Repeat("y", 4<<20)})
		err := c.DeleteItem(ctx, "p", "s", "")
		var e *Error
		if !errors.As(err, &e) || len(e.Message) != maxMessageBytes || !errors.Is(err, ErrInternal) {
			t.Errorf("DeleteItem error = %v", err)
		}
	})
	t.Run("304 outside a poll", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 304})
		if _, err := c.ReadItem(ctx, "p", "s"); !errors.Is(err, ErrNotModified) {
			t.Errorf("ReadItem error = %v, want ErrNotModified", err)
		}
	})
	t.Run("malformed success body", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 200, body: `{"not":"an array"}`})
		if _, err := c.ReadBatch(ctx, []Search{{PartitionKey: "p"}}); err == nil {
			t.Error("ReadBatch decoded a malformed body")
		}
	})
	t.Run("result count mismatch", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 200, body: `[]`})
		if _, err := c.ReadBatch(ctx, []Search{{PartitionKey: "p"}}); err == nil {
			t.Error("ReadBatch accepted 0 results for 1 search")
		}
		if _, err := c.DeleteBatch(ctx, []DeleteSearch{{PartitionKey: "p"}}); err == nil {
			t.Error("DeleteBatch accepted 0 results for 1 search")
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 302, header: map[string]string{"Location": "http://elsewhere.invalid/"}})
		var e *Error
		if _, err := c.ReadItem(ctx, "p", "s"); !errors.As(err, &e) || e.StatusCode != 302 {
			t.Errorf("ReadItem error = %v, want an *Error with status 302", err)
		}
	})
	t.Run("context canceled", func(t *testing.T) {
		c := newStatusClient(t, cannedResponse{status: 204})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := c.InsertItem(cctx, "p", "s", nil, ""); !errors.Is(err, context.Canceled) {
			t.Errorf("InsertItem error = %v, want context.Canceled", err)
		}
	})
}

func TestReadValueOutcomesCanned(t *testing.T) {
	ctx := context.Background()
	const tok = "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"
	tests := []struct {
		name      string
		resp      cannedResponse
		wantValue Value
		wantErr   error
	}{
		{"value", cannedResponse{200, map[string]string{tokenHeader: tok, "Content-Type": "application/octet-stream"}, "hello"},
			Value{Data: []byte("hello")}, nil},
		{"empty value", cannedResponse{200, map[string]string{tokenHeader: tok, "Content-Type": "application/octet-stream"}, ""},
			Value{Data: []byte{}}, nil},
		{"tombstone", cannedResponse{204, map[string]string{tokenHeader: tok, "Content-Type": "application/octet-stream"}, ""},
			Value{Tombstone: true}, nil},
		{"conflict", cannedResponse{409, map[string]string{tokenHeader: tok}, ""}, Value{}, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStatusClient(t, tt.resp)
			v, ct, err := c.ReadValue(ctx, "p", "s")
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ReadValue error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(v, tt.wantValue) {
				t.Errorf("ReadValue value = %+v, want %+v", v, tt.wantValue)
			}
			if ct != tok {
				t.Errorf("ReadValue token = %q, want %q", ct, tok)
			}
			var ce *ConflictError
			if errors.As(err, &ce) && ce.CausalityToken != tok {
				t.Errorf("ConflictError token = %q", ce.CausalityToken)
			}
		})
	}
}

func TestReadItemCanned(t *testing.T) {
	const tok = "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA"
	c := newStatusClient(t, cannedResponse{200, map[string]string{tokenHeader: tok, "Content-Type": "application/json"},
		string(readTestdata(t, "readitem-response.json"))})
	it, err := c.ReadItem(context.Background(), "mailboxes", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	want := &Item{PartitionKey: "mailboxes", SortKey: "INBOX", CausalityToken: tok,
		Values: []Value{{Data: []byte("hello")}, {Tombstone: true}}}
	if !reflect.DeepEqual(it, want) {
		t.Errorf("ReadItem = %+v, want %+v", it, want)
	}
}

func TestPollTimeoutsCanned(t *testing.T) {
	ctx := context.Background()
	c := newStatusClient(t, cannedResponse{status: 304})
	it, changed, err := c.PollItem(ctx, "p", "s", "AAAAAAAAAAA", &PollOptions{Timeout: time.Second})
	if it != nil || changed || err != nil {
		t.Errorf("PollItem on 304 = %v, %v, %v; want nil, false, nil", it, changed, err)
	}
	res, changed, err := c.PollRange(ctx, "p", "M", &PollRangeOptions{Timeout: time.Second})
	if changed || err != nil || res == nil || res.SeenMarker != "M" || len(res.Items) != 0 {
		t.Errorf("PollRange on 304 = %+v, %v, %v; want the marker back, false, nil", res, changed, err)
	}

	c = newStatusClient(t, cannedResponse{200, map[string]string{tokenHeader: "T2"}, `["eA=="]`})
	it, changed, err = c.PollItem(ctx, "p", "s", "T1", nil)
	if err != nil || !changed || it.CausalityToken != "T2" || string(it.Values[0].Data) != "x" {
		t.Errorf("PollItem on 200 = %+v, %v, %v", it, changed, err)
	}
}
