package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// readBufSize holds several records, so that one read syscall takes in
// many small ones and a full record rarely needs moving.
const readBufSize = 256 << 10

// Conn is an established, authenticated connection to one peer. It carries
// any number of concurrent calls in both directions. Safe for concurrent
// use.
type Conn struct {
	t       *Transport
	nc      net.Conn
	peer    layout.NodeID
	inbound bool
	log     *slog.Logger

	done chan struct{}

	mu struct {
		sync.Mutex
		err     error
		closed  bool
		nextID  uint64 // our next stream ID: odd if we dialed, even if not
		calls   map[uint64]*call
		serving map[uint64]*serverStream
		// Deduplication drain (see checkDrain).
		draining   bool // we sent goaway
		goAwayRecv bool
		closeSent  bool
		closeRecv  bool
	}
	closeWritten atomic.Bool

	w writer

	// Owned by the read loop.
	recv      *transportCipher
	rbuf      []byte
	rr, rw    int
	inline    *serverStream // to run inline after the current record
	inlineGen uint64
	// The stream of the previous frame in the current record: its body
	// usually follows its header there, and this saves a lookup.
	lastCall  *call
	lastServe *serverStream

	inlineState atomic.Uint64 // see inline.go
	inlineStat  atomic.Pointer[endpointStat]

	announced bool // OnConnect was called; guarded by t.mu
}

func (t *Transport) newConn(nc net.Conn, peer layout.NodeID, inbound bool, send, recv *transportCipher) *Conn {
	c := &Conn{
		t:       t,
		nc:      nc,
		peer:    peer,
		inbound: inbound,
		log:     t.log.With("peer", peer),
		done:    make(chan struct{}),
		recv:    recv,
		rbuf:    make([]byte, readBufSize),
	}
	c.mu.nextID = 1
	if inbound {
		c.mu.nextID = 2
	}
	c.mu.calls = make(map[uint64]*call)
	c.mu.serving = make(map[uint64]*serverStream)
	c.w.wake = make(chan struct{}, 1)
	c.w.cipher = send
	c.w.buf = make([]byte, 0, writeBufSize)
	return c
}

// Peer returns the ID of the node at the other end, as authenticated by
// the handshake.
func (c *Conn) Peer() layout.NodeID { return c.peer }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Inbound reports whether the peer dialed this connection.
func (c *Conn) Inbound() bool { return c.inbound }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, then why it closed:
// ErrClosed after Close, ErrReplaced after deduplication, otherwise an
// error wrapping ErrConnLost.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// Close closes the connection at once. Pending calls in both directions
// fail with ErrClosed. Safe to call more than once.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// peerLeft reports whether the peer sent goaway: it drains c.
func (c *Conn) peerLeft() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.goAwayRecv
}

// initiator returns the ID of the node that dialed c.
func (c *Conn) initiator() layout.NodeID {
	if c.inbound {
		return c.peer
	}
	return c.t.id
}

// ours reports whether we opened stream id.
func (c *Conn) ours(id uint64) bool { return (id&1 == 1) != c.inbound }

func (c *Conn) lostErr(err error) error {
	return fmt.Errorf("%w: %s: %w", ErrConnLost, c.peer.Short(), err)
}

// closeWith closes c with err (once).
func (c *Conn) closeWith(err error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	c.mu.err = err
	calls, serving := c.mu.calls, c.mu.serving
	c.mu.calls, c.mu.serving = nil, nil
	c.mu.Unlock()

	close(c.done)
	c.nc.Close()
	c.closeWriter()
	for _, cs := range calls {
		if !cs.deliver(err) && cs.in.rs != nil {
			cs.in.rs.fail(err)
		}
	}
	for _, ss := range serving {
		ss.hctx.cancel(context.Canceled)
		if ss.in.rs != nil {
			ss.in.rs.fail(err)
		}
	}
	c.log.Debug("rpc: connection closed", "err", err)
	c.t.connClosed(c, err)
}

// Deduplication drain. When a connection loses deduplication (see
// Transport.register) each side sends goaway and opens no new stream on
// it, but serves whatever the peer sends until it receives the peer's
// goaway. A side with goaway sent and received and no stream left sends
// close, its last frame; it shuts the socket once its close is written and
// the peer's received. Neither side then has unread data, so no call
// running on the connection is lost to a TCP reset.
func (c *Conn) startDrain() {
	c.mu.Lock()
	if c.mu.closed || c.mu.draining {
		c.mu.Unlock()
		return
	}
	c.mu.draining = true
	c.mu.Unlock()
	c.log.Debug("rpc: draining duplicate connection", "inbound", c.inbound)
	c.queueCtrl(frameGoAway, 0, nil, false)
	c.checkDrain()
}

func (c *Conn) checkDrain() {
	c.mu.Lock()
	if c.mu.closed || !c.mu.draining || !c.mu.goAwayRecv {
		c.mu.Unlock()
		return
	}
	sendClose := false
	if !c.mu.closeSent && len(c.mu.calls) == 0 && len(c.mu.serving) == 0 {
		c.mu.closeSent, sendClose = true, true
	}
	finish := c.mu.closeRecv && c.closeWritten.Load()
	c.mu.Unlock()
	if sendClose {
		c.queueCtrl(frameClose, 0, nil, false)
	}
	if finish {
		c.closeWith(ErrReplaced)
	}
}

// readHello reads the initiator's first record, which must start with a
// hello frame, and returns the frames after it. Until it succeeds the
// responder does not count the connection: whoever replays a captured msg1
// gets msg2 but cannot produce this.
func (c *Conn) readHello() ([]byte, error) {
	pt, err := c.readRecord()
	if err != nil {
		return nil, err
	}
	h, payload, rest, err := decodeFrame(pt)
	if err != nil {
		return nil, err
	}
	if h.typ != frameHello || payload[0] != 1 {
		return nil, fmt.Errorf("first frame is type %d, not hello", h.typ)
	}
	return rest, nil
}

func (c *Conn) readLoop(first []byte) {
	handedOver := false
	var err error
	defer func() {
		if handedOver {
			return
		}
		if err == nil {
			err = errors.New("read loop exited") // an inline handler called runtime.Goexit
		}
		if errors.Is(err, errProtocol) {
			c.log.Warn("rpc: closing connection", "err", err)
		}
		c.closeWith(c.lostErr(err))
	}()
	err = c.handleFrames(first)
	for err == nil {
		if !c.runPending() {
			handedOver = true // another goroutine reads now
			return
		}
		var pt []byte
		if pt, err = c.readRecord(); err == nil {
			err = c.handleFrames(pt)
		}
	}
}

// readRecord reads and decrypts the next record in place. The plaintext is
// valid until the next call.
func (c *Conn) readRecord() ([]byte, error) {
	for c.rw-c.rr < recordHeaderLen {
		if err := c.fill(recordHeaderLen); err != nil {
			return nil, err
		}
	}
	n := int(binary.BigEndian.Uint16(c.rbuf[c.rr:]))
	if n < tagLen {
		return nil, fmt.Errorf("%w: record of %d bytes", errProtocol, n)
	}
	need := recordHeaderLen + n
	for c.rw-c.rr < need {
		if err := c.fill(need); err != nil {
			return nil, err
		}
	}
	ct := c.rbuf[c.rr+recordHeaderLen : c.rr+need]
	c.rr += need
	pt, err := c.recv.open(ct)
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt: %v", errProtocol, err)
	}
	return pt, nil
}

// fill reads more bytes, first making room for need bytes from rr.
func (c *Conn) fill(need int) error {
	if c.rr == c.rw {
		c.rr, c.rw = 0, 0
	} else if len(c.rbuf)-c.rr < need {
		c.rw = copy(c.rbuf, c.rbuf[c.rr:c.rw])
		c.rr = 0
	}
	n, err := c.nc.Read(c.rbuf[c.rw:])
	c.rw += n
	if n > 0 {
		return nil
	}
	if err == nil {
		return nil
	}
	return err
}

var errProtocol = errors.New("rpc: protocol violation")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// handleFrames dispatches the frames of one record. It never blocks on the
// application: bodies are copied out, stream bytes go to bounded buffers,
// handlers run on their own goroutines.
func (c *Conn) handleFrames(pt []byte) error {
	c.lastCall, c.lastServe = nil, nil
	for len(pt) > 0 {
		h, payload, rest, err := decodeFrame(pt)
		if err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		pt = rest
		switch h.typ {
		case frameRequest:
			err = c.onRequest(h.stream, payload)
		case frameResponse:
			err = c.onResponse(h.stream, payload)
		case frameData:
			err = c.onData(h.stream, payload, h.flags&flagFin != 0)
		case frameWindow:
			err = c.onWindow(h.stream, int(binary.BigEndian.Uint32(payload)))
		case frameReset:
			c.onReset(h.stream, payload[0], string(payload[1:]))
		case frameGoAway:
			c.mu.Lock()
			c.mu.goAwayRecv = true
			c.mu.Unlock()
			c.checkDrain()
		case frameClose:
			c.mu.Lock()
			ok := c.mu.draining && c.mu.goAwayRecv
			c.mu.closeRecv = true
			c.mu.Unlock()
			if !ok {
				return protoErr("close before goaway")
			}
			c.checkDrain()
		case frameHello:
			return protoErr("second hello")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) onRequest(id uint64, payload []byte) error {
	if c.ours(id) {
		return protoErr("request on our stream %d", id)
	}
	hdr, err := decodeRequestHeader(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errProtocol, err)
	}
	cfg := &c.t.cfg
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	if _, dup := c.mu.serving[id]; dup {
		c.mu.Unlock()
		return protoErr("stream %d reused", id)
	}
	if len(c.mu.serving) >= cfg.MaxStreams {
		c.mu.Unlock()
		c.log.Debug("rpc: refusing stream", "endpoint", hdr.Endpoint, "streams", cfg.MaxStreams)
		c.sendReset(id, resetRefused, "", false)
		return nil
	}
	if hdr.BodyLen > cfg.MaxMessageBytes {
		c.mu.Unlock()
		c.sendReset(id, resetTooLarge, "", false)
		return nil
	}
	ss := &serverStream{c: c, id: id, hdr: hdr}
	if hdr.Timeout > 0 {
		ss.received = time.Now()
	}
	c.mu.serving[id] = ss
	c.mu.Unlock()
	ss.in.expect(c, id, hdr.BodyLen, hdr.Stream)
	if hdr.BodyLen == 0 {
		c.startHandler(ss)
	} else {
		c.lastServe = ss
	}
	return nil
}

func (c *Conn) onResponse(id uint64, payload []byte) error {
	if !c.ours(id) {
		return protoErr("response on peer stream %d", id)
	}
	hdr, err := decodeResponseHeader(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errProtocol, err)
	}
	c.mu.Lock()
	cs := c.mu.calls[id]
	c.mu.Unlock()
	if cs == nil {
		return nil // cancelled
	}
	if cs.in.started {
		return protoErr("second response on stream %d", id)
	}
	// The handler has returned: whatever of a request stream is unsent
	// would be discarded.
	if cs.snd.streamed {
		c.abortSender(&cs.snd)
	}
	switch {
	case hdr.Error:
		c.endCall(cs, &RemoteError{Peer: c.peer, Endpoint: cs.endpoint, Message: hdr.Message}, false, false)
		return nil
	case hdr.BodyLen > c.t.cfg.MaxMessageBytes:
		c.endCall(cs, fmt.Errorf("%w: response of %d bytes", ErrTooLarge, hdr.BodyLen), true, false)
		return nil
	}
	cs.in.expect(c, id, hdr.BodyLen, hdr.Stream)
	if hdr.BodyLen == 0 {
		c.completeCall(cs)
	} else {
		c.lastCall = cs
	}
	return nil
}

func (c *Conn) onData(id uint64, p []byte, fin bool) error {
	var m *inMessage
	var cs *call
	var ss *serverStream
	switch {
	case c.lastCall != nil && c.lastCall.id == id:
		cs, m = c.lastCall, &c.lastCall.in
	case c.lastServe != nil && c.lastServe.id == id:
		ss, m = c.lastServe, &c.lastServe.in
	default:
		c.mu.Lock()
		if c.ours(id) {
			if cs = c.mu.calls[id]; cs != nil {
				m = &cs.in
			}
		} else if ss = c.mu.serving[id]; ss != nil {
			m = &ss.in
		}
		c.mu.Unlock()
	}
	if m == nil {
		return nil // a stream that ended or was refused
	}
	if !m.started {
		return protoErr("data before response on stream %d", id)
	}
	if len(m.body) < m.bodyLen {
		if fin || len(p) > m.bodyLen-len(m.body) {
			return protoErr("body overrun on stream %d", id)
		}
		m.appendBody(p)
		if len(m.body) == m.bodyLen {
			if cs != nil {
				c.completeCall(cs)
			} else {
				c.startHandler(ss)
			}
		}
		return nil
	}
	if m.rs == nil {
		return protoErr("data after body on stream %d", id)
	}
	if err := m.rs.push(p, fin); err != nil {
		return protoErr("stream %d: %v", id, err)
	}
	return nil
}

func (c *Conn) onWindow(id uint64, n int) error {
	var s *sender
	c.mu.Lock()
	if c.ours(id) {
		if cs := c.mu.calls[id]; cs != nil {
			s = &cs.snd
		}
	} else if ss := c.mu.serving[id]; ss != nil {
		s = &ss.snd
	}
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	if err := c.addCredit(s, n); err != nil {
		return protoErr("stream %d: %v", id, err)
	}
	return nil
}

func (c *Conn) onReset(id uint64, code byte, msg string) {
	if c.ours(id) {
		c.mu.Lock()
		cs := c.mu.calls[id]
		c.mu.Unlock()
		if cs == nil {
			return
		}
		var err error
		switch code {
		case resetRefused:
			err = fmt.Errorf("%w: %s by %s", ErrRefused, cs.endpoint, c.peer.Short())
		case resetTooLarge:
			err = fmt.Errorf("%w: %s request refused by %s", ErrTooLarge, cs.endpoint, c.peer.Short())
		default:
			if msg == "" {
				msg = "stream aborted"
			}
			err = &RemoteError{Peer: c.peer, Endpoint: cs.endpoint, Message: msg}
		}
		c.endCall(cs, err, false, false)
		return
	}
	// The caller cancelled.
	c.mu.Lock()
	ss := c.mu.serving[id]
	if ss != nil && !ss.started {
		delete(c.mu.serving, id)
	}
	c.mu.Unlock()
	if ss == nil {
		return
	}
	ss.canceled.Store(true)
	ss.hctx.cancel(context.Canceled)
	c.abortSender(&ss.snd)
	if ss.in.rs != nil {
		ss.in.rs.fail(context.Canceled)
	}
	c.checkDrain()
}

// inMessage is the receiving state of a request or response. The read loop
// owns it until the message is handed over.
type inMessage struct {
	started bool
	bodyLen int    // declared
	body    []byte // received so far
	rs      *recvStream
}

// eagerBodyBytes is how much of a declared body is allocated up front.
// Larger bodies grow as their bytes arrive, so that a header alone cannot
// reserve MaxMessageBytes: memory follows the bytes actually received.
// It holds a 1 MiB data block (the default block_size) with its headers
// in one allocation.
const eagerBodyBytes = 1<<20 + 64<<10

func (m *inMessage) expect(c *Conn, id uint64, bodyLen int, stream bool) {
	m.started = true
	m.bodyLen = bodyLen
	if bodyLen > 0 {
		m.body = make([]byte, 0, min(bodyLen, eagerBodyBytes))
	}
	if stream {
		m.rs = newRecvStream(c, id)
		m.rs.open()
	}
}

func (m *inMessage) appendBody(p []byte) {
	if need := len(m.body) + len(p); need > cap(m.body) {
		b := make([]byte, len(m.body), min(max(2*cap(m.body), need), m.bodyLen))
		copy(b, m.body)
		m.body = b
	}
	m.body = append(m.body, p...)
}
