package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// call is the caller's side of a stream.
type call struct {
	c        *Conn
	id       uint64
	endpoint string
	snd      sender
	in       inMessage // owned by the read loop until delivered

	// state moves once from callWaiting to callDelivered (by the read
	// loop or a failure) or callCanceled (by Call giving up).
	state atomic.Int32
	ready chan struct{}
	err   error // set before ready is signalled

	stopCtx func() bool // stops the context watch of a response stream
}

const (
	callWaiting = iota
	callDelivered
	callCanceled
)

// deliver hands the outcome to Call, unless Call gave up already.
func (cs *call) deliver(err error) bool {
	if !cs.state.CompareAndSwap(callWaiting, callDelivered) {
		return false
	}
	cs.err = err
	cs.ready <- struct{}{}
	return true
}

// Call sends req to the peer and waits for the response.
//
// The ctx deadline travels with the request and bounds the handler's
// context; cancelling ctx cancels the handler and makes Call return
// ctx.Err() at once. If the response has a Stream, ctx keeps governing it
// until it is read to EOF or closed.
//
// req.Body must not be modified until Call returns. req.Stream is read by
// another goroutine, possibly until shortly after Call returns (one Read
// call at most); it is not closed.
//
// Errors: a handler's error is a *RemoteError; ErrRefused, ErrTooLarge;
// errors wrapping ErrConnLost or ErrClosed when the connection ends.
// Calls on a connection replaced by deduplication go to its replacement.
func (c *Conn) Call(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case req.Priority > Background:
		return nil, fmt.Errorf("rpc: call %s: invalid priority %d", req.Endpoint, req.Priority)
	case len(req.Endpoint) == 0 || len(req.Endpoint) > maxEndpointLen:
		return nil, fmt.Errorf("rpc: call: endpoint name of %d bytes", len(req.Endpoint))
	case len(req.Body) > c.t.cfg.MaxMessageBytes:
		return nil, fmt.Errorf("%w: %s request of %d bytes", ErrTooLarge, req.Endpoint, len(req.Body))
	}
	hdr := requestHeader{
		Endpoint: req.Endpoint,
		Priority: req.Priority,
		Stream:   req.Stream != nil,
		BodyLen:  len(req.Body),
	}
	if dl, ok := ctx.Deadline(); ok {
		if hdr.Timeout = time.Until(dl); hdr.Timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	cs := &call{c: c, endpoint: req.Endpoint, ready: make(chan struct{}, 1)}
	streamed := req.Stream != nil

	c.mu.Lock()
	if c.mu.draining {
		// Deduplication replaced c: use its replacement.
		c.mu.Unlock()
		if r := c.t.Conn(c.peer); r != nil && r != c {
			return r.Call(ctx, req)
		}
		return nil, fmt.Errorf("%w: %s (connection replaced)", ErrNotConnected, c.peer.Short())
	}
	if c.mu.closed {
		err := c.mu.err
		c.mu.Unlock()
		return nil, err
	}
	cs.id = c.mu.nextID
	c.mu.nextID += 2
	cs.snd.init(cs.id, req.Priority, frameRequest, false)
	cs.snd.setMessage(hdr.appendTo(cs.snd.hdrBuf[:0]), req.Body, streamed)
	c.mu.calls[cs.id] = cs
	c.mu.Unlock()

	if err := c.submit(&cs.snd, true); err != nil {
		c.removeCall(cs)
		return nil, err
	}
	if req.Stream != nil {
		r := req.Stream
		if !c.t.spawn(func() { c.pumpRequest(cs, r) }) {
			c.endCall(cs, ErrClosed, true, true)
		}
	}

	if done := ctx.Done(); done == nil {
		<-cs.ready // cheaper than a select
	} else {
		select {
		case <-cs.ready:
		case <-done:
			if cs.state.CompareAndSwap(callWaiting, callCanceled) {
				c.endCall(cs, nil, true, true)
				return nil, ctx.Err()
			}
			<-cs.ready
		}
	}
	if cs.err != nil {
		// Typically the handler's copy of the deadline expired before our
		// context's timer fired: report the caller's own reason.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return nil, context.DeadlineExceeded
		}
		return nil, cs.err
	}
	resp := &Response{Body: cs.in.body}
	if rs := cs.in.rs; rs != nil {
		rs.mu.Lock()
		rs.onClose = func(fin bool) {
			if cs.stopCtx != nil {
				cs.stopCtx()
			}
			if fin {
				c.removeCall(cs)
			} else {
				c.endCall(cs, errStreamClosed, true, true)
			}
		}
		rs.mu.Unlock()
		if ctx.Done() != nil {
			cs.stopCtx = context.AfterFunc(ctx, func() { c.endCall(cs, ctx.Err(), true, true) })
		}
		resp.Stream = rs
	}
	return resp, nil
}

// completeCall delivers a fully received response. Read loop only.
func (c *Conn) completeCall(cs *call) {
	if cs.in.rs == nil {
		c.removeCall(cs)
	}
	if !cs.deliver(nil) && cs.in.rs != nil {
		c.endCall(cs, context.Canceled, true, false)
	}
}

// removeCall forgets cs; it reports whether cs was still registered.
func (c *Conn) removeCall(cs *call) bool {
	c.mu.Lock()
	ok := c.mu.calls[cs.id] == cs
	if ok {
		delete(c.mu.calls, cs.id)
	}
	draining := c.mu.draining
	c.mu.Unlock()
	if ok && draining {
		c.checkDrain()
	}
	return ok
}

// endCall ends cs with err: it stops sending the request, fails the
// response stream if there is one, tells the peer if reset, and forgets cs.
// direct is false on the read loop, which must not write.
func (c *Conn) endCall(cs *call, err error, reset, direct bool) {
	if !c.removeCall(cs) {
		return
	}
	hdrSent := c.abortSender(&cs.snd)
	if err != nil && !cs.deliver(err) && cs.in.rs != nil {
		cs.in.rs.fail(err)
	}
	if reset && hdrSent {
		c.sendReset(cs.id, resetCancel, "", direct)
	}
}

// pumpRequest streams a request's Stream; it runs on its own goroutine.
func (c *Conn) pumpRequest(cs *call, r io.Reader) {
	if err := c.pump(&cs.snd, r); err != nil && !errors.Is(err, errAborted) {
		c.endCall(cs, fmt.Errorf("rpc: call %s: read request stream: %w", cs.endpoint, err), true, true)
	}
}

// pump reads r into chunks for s until EOF, then sends fin. It returns nil
// at EOF, errAborted if the stream ended first, or r's error.
func (c *Conn) pump(s *sender, r io.Reader) error {
	allocated := 0
	var spare []byte
	defer func() {
		for {
			select {
			case b := <-s.free:
				putChunk(b)
			default:
				if spare != nil {
					putChunk(spare)
				}
				return
			}
		}
	}()
	for {
		b := spare
		spare = nil
		if b == nil {
			select {
			case b = <-s.free:
			default:
				if allocated < pumpChunks {
					b = getChunk()
					allocated++
				} else {
					select {
					case b = <-s.free:
					case <-s.done:
						return errAborted
					case <-c.done:
						return errAborted
					}
				}
			}
		}
		select {
		case <-s.done:
			spare = b
			return errAborted
		default:
		}
		n, err := r.Read(b[:cap(b)])
		if n > 0 || err == io.EOF {
			if n == 0 {
				spare = b
				b = nil
			}
			if e := c.submitChunk(s, b[:n:cap(b)], err == io.EOF); e != nil {
				return e
			}
		} else {
			spare = b
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// serverStream is the handler's side of a stream.
type serverStream struct {
	c        *Conn
	id       uint64
	hdr      requestHeader
	received time.Time
	in       inMessage // owned by the read loop until the handler starts
	snd      sender

	hctx     handlerCtx
	incoming Incoming
	stat     *endpointStat // set if the handler may run inline

	started  bool        // read loop only
	canceled atomic.Bool // the caller reset the stream
}

// startHandler runs the handler once the request body is in. Read loop
// only.
func (c *Conn) startHandler(ss *serverStream) {
	ss.started = true
	ss.snd.init(ss.id, ss.hdr.Priority, frameResponse, false)
	if ss.hdr.Timeout > 0 {
		ss.hctx.start(ss.received.Add(ss.hdr.Timeout))
	}
	c.queueHandler(ss)
}

var errNoHandler = errors.New("no handler")

func (c *Conn) serve(ss *serverStream) {
	ctx := &ss.hctx
	defer func() {
		ctx.cancel(context.Canceled)
		c.mu.Lock()
		if c.mu.serving[ss.id] == ss {
			delete(c.mu.serving, ss.id)
		}
		draining := c.mu.draining
		c.mu.Unlock()
		if draining {
			c.checkDrain()
		}
	}()
	in := &ss.incoming
	*in = Incoming{Endpoint: ss.hdr.Endpoint, Priority: ss.hdr.Priority, Body: ss.in.body}
	if rs := ss.in.rs; rs != nil {
		in.Stream = rs
		stop := ctx.AfterFunc(func() { rs.fail(ctx.Err()) })
		defer stop()
	}
	resp, err := c.runHandler(ctx, in)
	if ss.in.rs != nil {
		ss.in.rs.Close()
	}
	var stream io.ReadCloser
	if resp != nil && resp.Stream != nil {
		if err != nil {
			resp.Stream.Close()
		} else {
			stream = resp.Stream
		}
	}
	if ss.canceled.Load() {
		if stream != nil {
			stream.Close()
		}
		return
	}
	var rh responseHeader
	var body []byte
	switch {
	case err != nil:
		rh.Error, rh.Message = true, err.Error()
		c.log.Debug("rpc: handler error", "endpoint", ss.hdr.Endpoint, "err", err)
	case resp == nil:
	case len(resp.Body) > c.t.cfg.MaxMessageBytes:
		rh.Error = true
		rh.Message = fmt.Sprintf("response of %d bytes exceeds the limit", len(resp.Body))
		if stream != nil {
			stream.Close()
			stream = nil
		}
	default:
		body = resp.Body
		rh.BodyLen = len(body)
		rh.Stream = stream != nil
	}
	s := &ss.snd
	if err := c.submitResponse(s, rh.appendTo(s.hdrBuf[:0]), body, stream != nil); err != nil {
		if stream != nil {
			stream.Close()
		}
		return
	}
	if stream != nil {
		err := c.pump(s, stream)
		stream.Close()
		if err != nil && !errors.Is(err, errAborted) {
			c.log.Debug("rpc: response stream failed", "endpoint", ss.hdr.Endpoint, "err", err)
			c.abortSender(s)
			c.sendReset(ss.id, resetInternal, "response stream: "+err.Error(), true)
			return
		}
	}
	// Wait until the response is written, so that the stream counts
	// against MaxStreams while it holds memory in the send queue.
	if done := c.sentOrDone(s); done != nil {
		select {
		case <-done:
		case <-c.done:
		}
	}
}

func (c *Conn) runHandler(ctx context.Context, in *Incoming) (resp *Response, err error) {
	h := c.t.cfg.Handler
	if h == nil {
		return nil, errNoHandler
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("rpc: handler panicked", "endpoint", in.Endpoint, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, errors.New("internal error")
		}
	}()
	return h.ServeRPC(ctx, c.peer, in)
}

// Call calls the current connection to id; ErrNotConnected if there is
// none. See Conn.Call.
func (t *Transport) Call(ctx context.Context, id layout.NodeID, req *Request) (*Response, error) {
	c := t.Conn(id)
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotConnected, id.Short())
	}
	return c.Call(ctx, req)
}
