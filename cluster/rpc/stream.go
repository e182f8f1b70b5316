package rpc

import (
	"errors"
	"io"
	"sync"
)

// Flow control. Only stream bytes (Request.Stream, Response.Stream) are
// flow controlled: bodies are bounded by MaxMessageBytes and copied out of
// the read loop at once. Each stream starts with initialWindowBytes of
// credit; the receiver raises it to its StreamWindowBytes when the stream
// opens and then grants credit back in window frames as the application
// reads, once a quarter of the window has been consumed. So a stream
// buffers at most its window, a slow reader stalls only its own sender,
// and the read loop never blocks.
const (
	initialWindowBytes = 64 << 10
	maxWindowBytes     = 1 << 30
	blockSize          = 64 << 10
)

var blockPool = sync.Pool{New: func() any { return new([blockSize]byte) }}

var errStreamClosed = errors.New("rpc: read from closed stream")

// recvStream is the inbound half of a streamed message: the io.Reader of
// Incoming.Stream and the io.ReadCloser of Response.Stream.
type recvStream struct {
	c      *Conn
	id     uint64
	window int
	notify chan struct{} // cap 1: data, fin or error arrived

	mu       sync.Mutex
	blocks   []*[blockSize]byte
	head     int // read offset in blocks[0]
	tail     int // write offset in the last block
	buffered int
	fin      bool
	err      error
	closed   bool
	credit   int // bytes the peer may still send
	unacked  int // bytes read but not yet granted back
	onClose  func(fin bool)
}

func newRecvStream(c *Conn, id uint64) *recvStream {
	return &recvStream{
		c:      c,
		id:     id,
		window: c.t.cfg.StreamWindowBytes,
		notify: make(chan struct{}, 1),
		credit: initialWindowBytes,
	}
}

// open grants the rest of the configured window. Called by the read loop.
func (r *recvStream) open() {
	if extra := r.window - initialWindowBytes; extra > 0 {
		r.mu.Lock()
		r.credit += extra
		r.mu.Unlock()
		r.c.sendWindow(r.id, extra, false)
	}
}

func (r *recvStream) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// push appends stream bytes from the read loop.
func (r *recvStream) push(p []byte, fin bool) error {
	r.mu.Lock()
	if r.fin {
		r.mu.Unlock()
		return errors.New("data after fin")
	}
	if len(p) > r.credit {
		r.mu.Unlock()
		return errors.New("flow control window exceeded")
	}
	r.credit -= len(p)
	r.fin = fin
	if r.closed || r.err != nil {
		r.mu.Unlock()
		return nil
	}
	for len(p) > 0 {
		if len(r.blocks) == 0 || r.tail == blockSize {
			r.blocks = append(r.blocks, blockPool.Get().(*[blockSize]byte))
			r.tail = 0
		}
		n := copy(r.blocks[len(r.blocks)-1][r.tail:], p)
		r.tail += n
		r.buffered += n
		p = p[n:]
	}
	r.mu.Unlock()
	r.wake()
	return nil
}

// fail ends the stream with err, unless it already ended.
func (r *recvStream) fail(err error) {
	r.mu.Lock()
	if r.err == nil && !(r.fin && r.buffered == 0) {
		r.err = err
	}
	r.mu.Unlock()
	r.wake()
}

func (r *recvStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return 0, errStreamClosed
		}
		if r.buffered > 0 {
			n := r.readLocked(p)
			grant := 0
			if r.unacked += n; r.unacked >= r.window/4 && !r.fin && r.err == nil {
				grant, r.unacked = r.unacked, 0
				r.credit += grant
			}
			r.mu.Unlock()
			if grant > 0 {
				r.c.sendWindow(r.id, grant, true)
			}
			return n, nil
		}
		if r.err != nil {
			err := r.err
			r.mu.Unlock()
			return 0, err
		}
		if r.fin {
			r.mu.Unlock()
			r.finish()
			return 0, io.EOF
		}
		r.mu.Unlock()
		<-r.notify
	}
}

func (r *recvStream) readLocked(p []byte) int {
	n := 0
	for n < len(p) && r.buffered > 0 {
		b := r.blocks[0]
		end := blockSize
		if len(r.blocks) == 1 {
			end = r.tail
		}
		k := copy(p[n:], b[r.head:end])
		n += k
		r.head += k
		r.buffered -= k
		if r.head == end {
			if len(r.blocks) == 1 {
				r.head, r.tail = 0, 0 // keep the block for what comes next
				break
			}
			blockPool.Put(b)
			r.blocks[0] = nil
			r.blocks = r.blocks[1:]
			r.head = 0
		}
	}
	return n
}

// finish runs the close hook once, after EOF.
func (r *recvStream) finish() {
	r.mu.Lock()
	f := r.onClose
	r.onClose = nil
	r.mu.Unlock()
	if f != nil {
		f(true)
	}
}

// Close releases the buffers. Closing before EOF tells the sender to stop.
func (r *recvStream) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for i, b := range r.blocks {
		blockPool.Put(b)
		r.blocks[i] = nil
	}
	r.blocks, r.buffered = nil, 0
	fin := r.fin || r.err != nil
	f := r.onClose
	r.onClose = nil
	r.mu.Unlock()
	r.wake()
	if f != nil {
		f(fin)
	}
	return nil
}

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

func getChunk() []byte { return chunkPool.Get().(*[chunkSize]byte)[:] }

func putChunk(b []byte) {
	if cap(b) == chunkSize {
		chunkPool.Put((*[chunkSize]byte)(b[:chunkSize]))
	}
}
