package k2vhttp

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/grangeio/grange/k2v"
)

// causalityHeader carries tokens on single-item endpoints.
const causalityHeader = "X-Garage-Causality-Token"

// format is the response format of ReadItem and PollItem.
type format int

const (
	formatJSON format = iota
	formatBinary
	formatEither // binary when the item has exactly one value, else JSON
)

// acceptFormat applies the Accept rules of k2v-api.md §6.1: exact,
// case-sensitive tokens; */* counts as both.
func (c *call) acceptFormat() (format, error) {
	accept, present, err := c.header("Accept")
	if err != nil {
		return 0, err
	}
	if !present {
		return formatJSON, nil
	}
	var json, bin bool
	for part := range strings.SplitSeq(accept, ",") {
		switch strings.TrimSpace(part) {
		case "application/json":
			json = true
		case "application/octet-stream":
			bin = true
		case "*/*":
			json, bin = true, true
		}
	}
	switch {
	case json && bin:
		return formatEither, nil
	case json:
		return formatJSON, nil
	case bin:
		return formatBinary, nil
	}
	return 0, &apiError{status: 406, code: "NotAcceptable", msg: "Not acceptable: no supported format in Accept: " + accept}
}

func (c *call) readItem(ctx context.Context) error {
	f, err := c.acceptFormat()
	if err != nil {
		return err
	}
	it, err := c.s.cfg.Items.Get(ctx, c.bucket.ID, c.req.Partition, c.req.SortKey)
	if err != nil {
		return err
	}
	if it == nil || !it.HasValues() {
		return &apiError{status: 404, code: "NoSuchKey", msg: "Key not found"}
	}
	c.writeItem(it, f)
	return nil
}

// writeItem writes a ReadItem response for it.
func (c *call) writeItem(it *k2v.Item, f format) {
	values := it.Values()
	c.rc.Response.Header.Set(causalityHeader, it.Context().Token())
	if f == formatEither {
		f = formatJSON
		if len(values) == 1 {
			f = formatBinary
		}
	}
	if f == formatJSON {
		c.rc.SetStatusCode(200)
		c.rc.SetContentType("application/json")
		c.rc.SetBody(appendValuesJSON(nil, values))
		return
	}
	switch {
	case len(values) > 1:
		c.rc.SetStatusCode(409) // the token header tells the client what to resolve
	case values[0].Tombstone:
		c.rc.SetStatusCode(204)
		c.rc.SetContentType("application/octet-stream")
	default:
		c.rc.SetStatusCode(200)
		c.rc.SetContentType("application/octet-stream")
		c.rc.SetBody(values[0].Data)
	}
}

// appendValuesJSON appends the JSON array of values: base64 strings, null
// for tombstones.
func appendValuesJSON(dst []byte, values []k2v.Value) []byte {
	dst = append(dst, '[')
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		if v.Tombstone {
			dst = append(dst, "null"...)
			continue
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Data)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

func (c *call) pollItem(ctx context.Context) error {
	f, err := c.acceptFormat()
	if err != nil {
		return err
	}
	token, err := k2v.ParseToken(c.req.CausalityToken)
	if err != nil {
		return badRequest("Invalid causality token")
	}
	it, changed, err := c.s.cfg.Items.PollItem(ctx, c.bucket.ID, c.req.Partition, c.req.SortKey, token, pollTimeout(c.req.Timeout))
	if err != nil && c.s.base.Err() == nil {
		return err
	}
	if !changed {
		// timeout, or the server is shutting down: "nothing new", the
		// client polls again
		c.rc.SetStatusCode(304)
		return nil
	}
	c.writeItem(it, f)
	return nil
}

// pollTimeout applies the default and clamp of poll timeouts.
func pollTimeout(t *uint64) time.Duration {
	s := uint64(defaultPollTimeout)
	if t != nil {
		s = min(max(*t, 1), maxPollTimeout)
	}
	return time.Duration(s) * time.Second
}

func (c *call) insertItem(ctx context.Context, delete bool) error {
	tok, present, err := c.header(causalityHeader)
	if err != nil {
		return err
	}
	var clock k2v.Clock
	if present {
		if clock, err = k2v.ParseToken(tok); err != nil {
			return &apiError{status: 400, code: "CausalityToken", msg: "Invalid causality token"}
		}
	}
	v := k2v.Value{Tombstone: true}
	if !delete {
		v = k2v.Value{Data: append([]byte{}, c.body...)}
	}
	w := k2v.Write{Partition: c.req.Partition, Sort: c.req.SortKey, Context: clock, Value: v}
	if err := c.s.cfg.Items.Insert(ctx, c.bucket.ID, w); err != nil {
		return err
	}
	c.rc.SetStatusCode(204)
	return nil
}
