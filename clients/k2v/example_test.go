package k2v_test

// These examples need a running server, so they have no Output lines: go
// test compiles them but does not run them.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/grangeio/grange/clients/k2v"
)

func newClient() *k2v.Client {
	c, err := k2v.New(k2v.Config{
		Endpoint:        "http://127.0.0.1:3904",
		AccessKeyID:     os.Getenv("K2V_KEY_ID"),
		SecretAccessKey: os.Getenv("K2V_SECRET_KEY"),
		Bucket:          "mail",
	})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func ExampleNew() {
	c, err := k2v.New(k2v.Config{
		Endpoint:        "http://127.0.0.1:3904",
		Region:          "garage", // the server's S3 region; "garage" is the default
		AccessKeyID:     "GK31c2f218a2e44f485b94239e",
		SecretAccessKey: os.Getenv("K2V_SECRET_KEY"),
		Bucket:          "mail",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.InsertItem(context.Background(), "mailbox:INBOX", "0001", []byte("hello"), ""); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_ReadItem() {
	c := newClient()
	it, err := c.ReadItem(context.Background(), "mailbox:INBOX", "0001")
	if errors.Is(err, k2v.ErrNoSuchKey) {
		fmt.Println("never written")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	if it.IsTombstone() {
		fmt.Println("deleted")
		return
	}
	for _, v := range it.Values { // several values: concurrent writes
		if !v.Tombstone {
			fmt.Printf("%q\n", v.Data)
		}
	}
}

func ExampleClient_ReadValue() {
	c := newClient()
	v, token, err := c.ReadValue(context.Background(), "mailbox:INBOX", "0001")
	switch {
	case errors.Is(err, k2v.ErrConflict):
		// Several concurrent values: read them all, then resolve.
		it, err := c.ReadItem(context.Background(), "mailbox:INBOX", "0001")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(it.Values), "concurrent values")
	case err != nil:
		log.Fatal(err)
	case v.Tombstone:
		fmt.Println("deleted; token", token)
	default:
		fmt.Printf("%q\n", v.Data)
	}
}

// Read-modify-write: the token of the read makes the write replace what
// was read instead of adding a concurrent value.
func ExampleClient_InsertItem() {
	c := newClient()
	ctx := context.Background()
	it, err := c.ReadItem(ctx, "counters", "visits")
	var token k2v.CausalityToken // zero: no context
	var n int
	switch {
	case errors.Is(err, k2v.ErrNoSuchKey):
	case err != nil:
		log.Fatal(err)
	default:
		token = it.CausalityToken
		for _, v := range it.Values { // merge concurrent values: keep the max
			var m int
			if !v.Tombstone {
				fmt.Sscan(string(v.Data), &m)
			}
			n = max(n, m)
		}
	}
	if err := c.InsertItem(ctx, "counters", "visits", fmt.Append(nil, n+1), token); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_DeleteItem() {
	c := newClient()
	ctx := context.Background()
	it, err := c.ReadItem(ctx, "mailbox:INBOX", "0001")
	if err != nil {
		log.Fatal(err)
	}
	// Delete exactly the versions that were read.
	if err := c.DeleteItem(ctx, "mailbox:INBOX", "0001", it.CausalityToken); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_PollItem() {
	c := newClient()
	ctx := context.Background()
	var token k2v.CausalityToken // zero: wait for the first write
	for {
		it, changed, err := c.PollItem(ctx, "config", "feature-flags", token, &k2v.PollOptions{Timeout: time.Minute})
		if err != nil {
			log.Fatal(err)
		}
		if !changed {
			continue // timeout: poll again
		}
		fmt.Println("new state:", it.Values)
		token = it.CausalityToken
	}
}

func ExampleClient_InsertBatch() {
	c := newClient()
	err := c.InsertBatch(context.Background(), []k2v.InsertOp{
		{PartitionKey: "mailbox:INBOX", SortKey: "0002", Value: k2v.Bytes([]byte("world"))},
		{PartitionKey: "mailbox:INBOX", SortKey: "0003", Value: k2v.Bytes(nil)}, // an empty value
		{PartitionKey: "mailbox:Trash", SortKey: "0001", CausalityToken: "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", Value: k2v.Tombstone()},
	})
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_ReadBatch() {
	c := newClient()
	res, err := c.ReadBatch(context.Background(), []k2v.Search{
		{PartitionKey: "mailbox:INBOX", Prefix: "00", Limit: 10},
		{PartitionKey: "mailbox:INBOX", Start: "0001", SingleItem: true},
		{PartitionKey: "mailbox:Drafts", ConflictsOnly: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Println(r.PartitionKey, len(r.Items), "items, more:", r.More)
	}
}

func ExampleClient_DeleteBatch() {
	c := newClient()
	res, err := c.DeleteBatch(context.Background(), []k2v.DeleteSearch{
		{PartitionKey: "mailbox:OldMailbox"},                             // the whole partition
		{PartitionKey: "mailbox:INBOX", Start: "0001", SingleItem: true}, // one item
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Println(r.PartitionKey, r.DeletedItems, "deleted")
	}
}

func ExampleClient_Scan() {
	c := newClient()
	for it, err := range c.Scan(context.Background(), "mailbox:INBOX", &k2v.ScanOptions{Prefix: "2026-", PageSize: 500}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(it.SortKey, len(it.Values))
	}
}

func ExampleClient_ReadIndex() {
	c := newClient()
	res, err := c.ReadIndex(context.Background(), &k2v.ReadIndexOptions{Prefix: "mailbox:", Limit: 100})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range res.PartitionKeys {
		fmt.Println(p.PartitionKey, p.Entries, "items", p.Conflicts, "conflicts", p.Bytes, "bytes")
	}
	if res.More {
		fmt.Println("next page starts at", res.NextStart)
	}
}

func ExampleClient_ListPartitions() {
	c := newClient()
	for p, err := range c.ListPartitions(context.Background(), &k2v.ListOptions{Prefix: "mailbox:"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.PartitionKey, p.Entries)
	}
}

func ExampleClient_PollRange() {
	c := newClient()
	ctx := context.Background()
	opts := &k2v.PollRangeOptions{Prefix: "0391.", Timeout: 30 * time.Second}
	// Without a marker: the current content of the range, and a marker.
	res, _, err := c.PollRange(ctx, "mailbox:INBOX", "", opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Items), "items now")
	// With it: wait for changes.
	res, changed, err := c.PollRange(ctx, "mailbox:INBOX", res.SeenMarker, opts)
	if err != nil {
		log.Fatal(err)
	}
	if changed {
		fmt.Println(len(res.Items), "items changed")
	}
}

func ExampleClient_WatchRange() {
	c := newClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	err := c.WatchRange(ctx, "mailbox:INBOX", "", &k2v.PollRangeOptions{Timeout: time.Minute},
		func(res *k2v.PollRangeResult) error {
			for _, it := range res.Items {
				fmt.Println("changed:", it.SortKey, it.IsTombstone())
			}
			// Persist res.SeenMarker to resume after a restart.
			return nil
		})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Fatal(err)
	}
}
