// Package k2v is the Go client of the K2V API ("key/key/value"), served
// by grange and wire-compatible with Garage's K2V API. The wire contract
// is docs/k2v-api.md; sections cited as §n refer to it.
//
// # Data model
//
// A bucket holds items addressed by a partition key and a sort key (UTF-8
// strings). Items with the same partition key form a partition; range
// reads, deletes and polls work inside one partition, in byte-wise order
// of the sort keys.
//
// An item holds one or more values. A Value is opaque bytes (possibly
// empty) or a tombstone, the mark of a delete; Value.Tombstone tells them
// apart, so an empty value is never mistaken for a deleted one. Several
// values coexist when writes were concurrent; an item whose values are all
// tombstones is deleted (Item.IsTombstone).
//
// Every read returns a CausalityToken with the item. Send it back with a
// write (InsertItem, DeleteItem, InsertOp) to replace the values that were
// read; a write with the zero token replaces nothing and adds its value
// next to the existing ones. Tokens are opaque strings.
//
// # Calls
//
// A Client, made by New, addresses one bucket. Every method takes a
// context first; optional parameters come in an options struct that may
// be nil.
//
//   - single items: ReadItem (all values, JSON), ReadValue (the single value,
//     binary), InsertItem, DeleteItem, PollItem;
//   - batches: InsertBatch, ReadBatch, DeleteBatch;
//   - listings: ReadIndex (partition keys and counters);
//   - range polling: PollRange, and the WatchRange loop;
//   - iterators that follow pagination: Scan (items of a partition range)
//     and ListPartitions (the index). The server may cut any page short,
//     so these always follow more/nextStart.
//
// Keys are percent-encoded in paths and queries with everything but the
// RFC 3986 unreserved characters escaped: a '/' in a partition key is sent
// as %2F (so a leading '/' survives), a '+' in a sort key as %2B and a
// space as %20. Empty range bounds (Prefix, Start, End) mean "absent".
//
// # Errors
//
// Error responses come back as *Error, with the HTTP status and the K2V
// code, and match the sentinel of their code with errors.Is:
// ErrNoSuchKey, ErrNoSuchBucket, ErrAccessDenied, ErrInvalidRequest, and so
// on. A binary read of an item with several values returns a
// *ConflictError (matching ErrConflict) that carries the token. Polls do
// not treat a timeout (HTTP 304) as an error: they return changed == false.
// Arguments that cannot be sent (an empty partition key in a path, invalid
// UTF-8) are refused before any request with an error wrapping
// ErrInvalidArgument. An error from a write does not mean it was not
// applied (§13).
//
// # Transport
//
// Requests go through net/http and are signed with AWS Signature Version 4
// for the service "k2v" and the server's region (§3). Response bodies are
// decoded as streams; error bodies are read up to a small cap. Poll
// requests get an HTTP deadline slightly longer than their server-side
// timeout.
//
// The package imports no server package of grange (nothing outside
// clients/), no fasthttp and no storage engine: applications embed it.
package k2v
