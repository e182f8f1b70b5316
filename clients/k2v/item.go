package k2v

import (
	"context"
	"net/http"
)

func checkItemKeys(pk, sk string) error {
	if err := checkKey("partition key", pk, true); err != nil {
		return err
	}
	return checkKey("sort key", sk, true)
}

// ReadItem reads an item with all its values (ReadItem in JSON form,
// k2v-api.md §6.1): GET /<bucket>/<pk>?sort_key=<sk>.
//
// A deleted item is returned with tombstone values (Item.IsTombstone); an
// item that was never written gives an error matching ErrNoSuchKey.
func (c *Client) ReadItem(ctx context.Context, pk, sk string) (*Item, error) {
	if err := checkItemKeys(pk, sk); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, &request{
		method: http.MethodGet,
		pk:     pk,
		query:  newQuery().add("sort_key", sk),
		accept: mimeJSON,
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.fail(resp)
	}
	return itemFromJSON(resp, pk, sk)
}

func itemFromJSON(resp *http.Response, pk, sk string) (*Item, error) {
	it := &Item{PartitionKey: pk, SortKey: sk, CausalityToken: responseToken(resp)}
	if err := decodeJSON(resp, &it.Values); err != nil {
		return nil, err
	}
	return it, nil
}

// ReadValue reads the single value of an item in binary form (ReadItem
// with Accept: application/octet-stream, k2v-api.md §6.1). It returns the
// value and the item's causality token:
//
//   - one value: Value.Data holds its bytes (possibly empty);
//   - a deleted item: Value.Tombstone is true (HTTP 204);
//   - several values: a *ConflictError, matching ErrConflict, carrying the
//     token (HTTP 409), which is also returned as the second result;
//   - never written: an error matching ErrNoSuchKey.
func (c *Client) ReadValue(ctx context.Context, pk, sk string) (Value, CausalityToken, error) {
	if err := checkItemKeys(pk, sk); err != nil {
		return Value{}, "", err
	}
	resp, err := c.do(ctx, &request{
		method: http.MethodGet,
		pk:     pk,
		query:  newQuery().add("sort_key", sk),
		accept: mimeBinary,
	})
	if err != nil {
		return Value{}, "", err
	}
	token := responseToken(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		data, err := readValue(resp)
		if err != nil {
			return Value{}, "", err
		}
		return Value{Data: data}, token, nil
	case http.StatusNoContent:
		closeBody(resp)
		return Value{Tombstone: true}, token, nil
	case http.StatusConflict:
		closeBody(resp)
		return Value{}, token, &ConflictError{CausalityToken: token}
	}
	return Value{}, "", c.fail(resp)
}

// InsertItem writes value as the value of an item (InsertItem, k2v-api.md
// §6.3): PUT /<bucket>/<pk>?sort_key=<sk>. With a token, the values that
// token covers are replaced; with the zero token the value is added next to
// the existing ones. value may be empty (an empty value, not a delete) and
// is not retained after the call returns.
func (c *Client) InsertItem(ctx context.Context, pk, sk string, value []byte, token CausalityToken) error {
	if err := checkItemKeys(pk, sk); err != nil {
		return err
	}
	resp, err := c.do(ctx, &request{
		method:  http.MethodPut,
		pk:      pk,
		query:   newQuery().add("sort_key", sk),
		body:    value,
		hasBody: true,
		token:   token,
	})
	if err != nil {
		return err
	}
	return c.expectNoContent(resp)
}

// DeleteItem writes a tombstone (DeleteItem, k2v-api.md §6.4):
// DELETE /<bucket>/<pk>?sort_key=<sk>. Pass the token of the values to
// delete: with the zero token the tombstone is added next to the existing
// values, which stay visible. Deleting an item never written creates a
// deleted item.
func (c *Client) DeleteItem(ctx context.Context, pk, sk string, token CausalityToken) error {
	if err := checkItemKeys(pk, sk); err != nil {
		return err
	}
	resp, err := c.do(ctx, &request{
		method: http.MethodDelete,
		pk:     pk,
		query:  newQuery().add("sort_key", sk),
		token:  token,
	})
	if err != nil {
		return err
	}
	return c.expectNoContent(resp)
}
