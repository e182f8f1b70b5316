// Package rpc is the encrypted, authenticated, multiplexed RPC transport
// between grange nodes. A Transport keeps at most one connection per peer;
// a Conn carries any number of concurrent calls in both directions. The
// peering layer (package cluster) builds membership and failure detection
// on top; this package imports only cluster/layout, for NodeID.
//
// # Handshake
//
// Noise IKpsk1 over X25519, SHA-256 and AES-256-GCM or
// ChaCha20-Poly1305 (handshake.go):
//
//	-> "grange-rpc/1" | suite            cleartext preamble = Noise prologue
//	-> len16 | msg1 (e, es, s, ss, psk)
//	<- len16 | msg2 (e, ee, se)
//	-> first record: a hello frame
//
// IK: the dialer names the node ID (its static public key) it expects, and
// only that node can answer msg2, so Dial fails with ErrHandshake when it
// reached another node. The cluster's 32-byte secret is the pre-shared key,
// mixed in at the end of msg1 (psk1 rather than psk2): a responder rejects
// a peer without the secret at msg1 and sends it nothing, and a dialer
// without it learns nothing from the responder. The initiator picks the
// suite from its own CPU (AES-GCM with AES-NI/ARMv8 AES, else
// ChaCha20-Poly1305); the responder accepts either. The suite is in the
// prologue and in the Noise protocol name, so rewriting it breaks the
// handshake rather than downgrading it.
//
// Replay: msg1 carries no timestamp, so a captured msg1 replayed on a new
// connection gets a msg2. The responder counts the connection (registers
// it, calls OnConnect, serves requests) only once it has decrypted the
// initiator's hello frame, which needs the initiator's ephemeral key.
// Handshake messages are at most 256 bytes; the handshake, hello included,
// must finish within HandshakeTimeout (10 s); at most MaxPendingHandshakes
// (64) inbound handshakes run at once, and more connections are dropped.
//
// # Records and frames
//
// After the handshake each direction is a sequence of records, each one
// Noise transport message (length uint16, ciphertext ≤ 65535 bytes with
// its 16-byte tag), sealed and opened in place. A record holds whole frames:
//
//	type uint8 | flags uint8 | length uint16 | stream uint64 | payload
//
// Types (wire.go): hello; request and response, carrying a versioned
// header (endpoint, priority, the deadline as time left, body length,
// stream flag; or an error message); data (body bytes, then stream bytes,
// with a fin flag ending the stream); window; reset (cancel, refused, too
// large, internal); goaway and close. The dialer numbers its streams odd,
// the other side even, so both open streams without coordination; 64-bit
// IDs never wrap. Decoders check every length and never panic; they are
// fuzzed (FuzzFrameDecode, FuzzHeaderDecode, FuzzHandshake).
//
// A call: the caller sends request, body and stream; the handler runs
// once the body is in (its context carries the caller's deadline and is
// cancelled by a reset, which the caller sends when its context ends);
// its response, body and stream go back on the same stream ID.
//
// # Priorities
//
// Each connection has one send queue: control frames first, then
// Interactive, Normal and Background rings. The next frame always comes
// from the highest non-empty priority, round robin between the streams of
// a priority, so a Background transfer delays an Interactive call by about
// the record being written (≤ 256 KiB are written per syscall). On Linux,
// TCP_NOTSENT_LOWAT keeps bulk data in this queue rather than in the
// kernel's, where it could not be overtaken. Several small frames share a
// record and a write.
//
// # Latency
//
// A goroutine that queues frames and finds the writer idle writes them
// itself. The read loop runs a small request's handler itself rather than
// handing it to a new goroutine (a thread wakeup and a stack growth each);
// a per-transport monitor moves reading to a new goroutine when such a
// handler blocks (≤ 2 × 200 µs), and endpoints that block are spawned from
// then on. The handler's context is a light type, not context.WithCancel
// of a parent. A small call then costs the syscalls of a TCP ping-pong plus
// one goroutine handoff (the read loop delivering the response to the
// caller), plus framing and AES-GCM.
//
// # Flow control and limits
//
// Bodies are []byte of at most MaxMessageBytes (16 MiB), checked by both
// sides; a body over 1 MiB is allocated as its bytes arrive, so memory
// follows the bytes received, not the length a header declares. Streams
// (Request.Stream, Response.Stream) are flow controlled per stream: the
// receiver grants StreamWindowBytes (256 KiB; 64 KiB until its first
// window frame) and grants more as the application reads. A slow reader
// therefore holds at most its window and stalls only its own sender; the
// read loop never waits for a slow reader. A connection serves at most
// MaxStreams (256) inbound streams at once and refuses more with
// ErrRefused; a stream counts until its response is fully written.
//
// # Deduplication
//
// When two nodes dial each other at once, both sides keep the connection
// dialed by the smaller node ID (or, if one node dialed both, the newer).
// The loser is drained, not cut: each side sends goaway and opens no more
// streams on it but serves the peer's until the peer's goaway arrives;
// with no stream left, each side sends close as its last frame and shuts
// the socket once close went both ways. Calls made on a drained Conn go to
// its replacement.
package rpc
