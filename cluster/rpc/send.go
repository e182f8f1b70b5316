package rpc

import (
	"encoding/binary"
	"errors"
	"sync"
)

// Sending.
//
// Every outbound message (a request from Call, a response from a handler)
// is a sender in one of three round-robin rings, one per priority. Control
// frames (window updates, resets, goaway, close) go in a byte queue ahead of
// everything. Whoever holds the writer (the "pen") builds records from the
// queue: the highest priority ring with work gives one frame, then its
// sender moves to the back of its ring. A large Background body therefore
// delays an Interactive frame by at most the record being written.
//
// The pen: a goroutine that queues work and finds the writer idle writes
// itself, batching whatever else is queued, and gives the pen back when the
// queue is empty; this saves a goroutine handoff per small call. After
// directWriteBytes it hands the pen, with the rest of the queue, to the
// connection's writer goroutine, so a caller is never stuck writing a
// long Background transfer. The read loop never writes (it would deadlock
// two peers both blocked writing); it always hands off.
//
// Frames are copied into the record buffer under writer.mu, so once a
// sender is aborted under that lock no byte of its body is touched again
// and Call can return. Sealing and the socket write happen outside the
// lock, by the pen holder only.

const (
	// writeBufSize holds two full records: building the second while the
	// queue still has work batches small frames into few writes.
	writeBufSize = 4 * (recordHeaderLen + maxRecordLen)
	// directWriteBytes is how much a caller writes itself before handing
	// the rest of the queue to the writer goroutine.
	directWriteBytes = 256 << 10
	// minDataFrame avoids slivers of data at the end of a record.
	minDataFrame = 512
	// chunkSize and pumpChunks bound what a stream pump reads ahead.
	chunkSize  = maxFramePayload
	pumpChunks = 4
)

var errAborted = errors.New("rpc: stream aborted")

// sender is the outbound half of a stream: a header frame, the body, then,
// if streamed, the chunks a pump hands over and a fin. Fields are guarded
// by writer.mu.
type sender struct {
	id      uint64
	prio    Priority
	hdrType frameType
	hdr     []byte // header payload; nil once written
	hdrBuf  [96]byte
	hdrSent bool
	body    []byte // body bytes not yet written

	streamed bool
	chunks   [][]byte // stream bytes handed over by the pump
	off      int      // bytes of chunks[0] already written
	fin      bool     // the pump reached EOF
	finSent  bool
	credit   int // stream bytes the peer lets us send

	queued   bool // in a ring
	aborted  bool
	finished bool
	free     chan []byte   // written chunks, back to the pump; streamed only
	done     chan struct{} // closed when finished or aborted; nil if nobody waits
}

// init prepares s before anyone else can see it.
func (s *sender) init(id uint64, prio Priority, typ frameType, wait bool) {
	s.id, s.prio, s.hdrType = id, prio, typ
	if wait {
		s.done = make(chan struct{})
	}
}

// setMessage sets what s sends. Under writer.mu once s is visible to the
// read loop.
func (s *sender) setMessage(hdr, body []byte, streamed bool) {
	s.hdr, s.body, s.streamed = hdr, body, streamed
	if streamed {
		s.credit = initialWindowBytes
		s.free = make(chan []byte, pumpChunks)
		if s.done == nil {
			s.done = make(chan struct{})
		}
	}
}

func (s *sender) sendable() bool {
	switch {
	case s.aborted || s.finished:
		return false
	case s.hdr != nil || len(s.body) > 0:
		return true
	case len(s.chunks) > 0:
		return s.credit > 0
	default:
		return s.fin && !s.finSent
	}
}

func (s *sender) end(aborted bool) {
	if s.aborted || s.finished {
		return
	}
	if aborted {
		s.aborted = true
	} else {
		s.finished = true
	}
	s.body, s.chunks = nil, nil
	if s.done != nil {
		close(s.done)
	}
}

// emit appends s's next frame to buf if it fits under limit.
func (s *sender) emit(buf []byte, limit int) ([]byte, bool) {
	room := limit - len(buf) - frameHeaderLen
	switch {
	case s.hdr != nil:
		if len(s.hdr) > room {
			return buf, false
		}
		buf = appendFrame(buf, s.hdrType, 0, s.id, s.hdr)
		s.hdr, s.hdrSent = nil, true
	case len(s.body) > 0:
		n := min(len(s.body), room, maxFramePayload)
		if n < min(len(s.body), minDataFrame) {
			return buf, false
		}
		buf = appendFrame(buf, frameData, 0, s.id, s.body[:n])
		s.body = s.body[n:]
	case len(s.chunks) > 0:
		c := s.chunks[0][s.off:]
		n := min(len(c), room, s.credit, maxFramePayload)
		if n < min(len(c), s.credit, minDataFrame) {
			return buf, false
		}
		var flags uint8
		if n == len(c) && len(s.chunks) == 1 && s.fin {
			flags, s.finSent = flagFin, true
		}
		buf = appendFrame(buf, frameData, flags, s.id, c[:n])
		s.credit -= n
		s.off += n
		if s.off == len(s.chunks[0]) {
			s.free <- s.chunks[0][:0] // never blocks: at most pumpChunks exist
			s.chunks[0] = nil
			s.chunks = s.chunks[1:]
			s.off = 0
		}
	case s.fin && !s.finSent:
		if room < 0 {
			return buf, false
		}
		buf = appendFrameHeader(buf, frameData, flagFin, s.id, 0)
		s.finSent = true
	default:
		return buf, false
	}
	if s.hdr == nil && len(s.body) == 0 && (!s.streamed || s.finSent) {
		s.end(false)
	}
	return buf, true
}

// ring is a FIFO of senders.
type ring struct {
	items []*sender
	head  int
}

func (r *ring) push(s *sender) { r.items = append(r.items, s) }

func (r *ring) front() *sender {
	if r.head == len(r.items) {
		return nil
	}
	return r.items[r.head]
}

func (r *ring) pop() {
	r.items[r.head] = nil
	r.head++
	if r.head == len(r.items) {
		r.items, r.head = r.items[:0], 0
	} else if r.head >= 32 && r.head*2 >= len(r.items) {
		n := copy(r.items, r.items[r.head:])
		clear(r.items[n:])
		r.items, r.head = r.items[:n], 0
	}
}

// writer is a connection's sending state.
type writer struct {
	mu     sync.Mutex
	rings  [Background + 1]ring
	ctrl   []byte // whole control frames
	busy   bool   // someone holds the pen
	closed bool
	wake   chan struct{} // hands the pen to the writer goroutine

	// Owned by the pen holder.
	cipher     *transportCipher
	buf        []byte
	recs       []int // start of each record in buf
	closeInBuf bool  // buf holds our close frame
}

// next returns the sender that should write the next frame, dropping
// senders with nothing to write from the fronts of the rings.
func (w *writer) next() *sender {
	for p := range w.rings {
		r := &w.rings[p]
		for s := r.front(); s != nil; s = r.front() {
			if s.sendable() {
				return s
			}
			s.queued = false
			r.pop()
		}
	}
	return nil
}

func (w *writer) pending() bool { return len(w.ctrl) > 0 || w.next() != nil }

// enqueueLocked puts s in its ring if it has something to write.
func (w *writer) enqueueLocked(s *sender) {
	if !s.queued && s.sendable() {
		s.queued = true
		w.rings[s.prio].push(s)
	}
}

// fillRecord appends frames to buf, up to limit.
func (w *writer) fillRecord(buf []byte, limit int) []byte {
	for len(w.ctrl) > 0 {
		n := frameHeaderLen + int(binary.BigEndian.Uint16(w.ctrl[2:4]))
		if len(buf)+n > limit {
			return buf
		}
		if frameType(w.ctrl[0]) == frameClose {
			w.closeInBuf = true
		}
		buf = append(buf, w.ctrl[:n]...)
		w.ctrl = w.ctrl[n:]
	}
	w.ctrl = w.ctrl[:0:0]
	for {
		s := w.next()
		if s == nil {
			return buf
		}
		var ok bool
		if buf, ok = s.emit(buf, limit); !ok {
			return buf
		}
		r := &w.rings[s.prio]
		r.pop()
		if s.sendable() {
			r.push(s) // round robin within the priority
		} else {
			s.queued = false
		}
	}
}

// fillLocked builds as many records as fit in w.buf.
func (w *writer) fillLocked() {
	for {
		room := cap(w.buf) - len(w.buf) - recordHeaderLen - tagLen
		if room < frameHeaderLen+minDataFrame || !w.pending() {
			return
		}
		start := len(w.buf)
		pt := start + recordHeaderLen
		buf := w.buf[:pt]
		buf = w.fillRecord(buf, pt+min(room, maxPlaintextLen))
		if len(buf) == pt {
			return
		}
		w.recs = append(w.recs, start)
		w.buf = buf[:len(buf)+tagLen] // room for the tag, sealed later
	}
}

// claimLocked takes the pen if it is free. If direct, the caller must then
// call writeLoop; otherwise the pen goes to the writer goroutine.
func (w *writer) claimLocked(direct bool) bool {
	if w.busy || w.closed {
		return false
	}
	w.busy = true
	if direct {
		return true
	}
	w.wake <- struct{}{} // never blocks: only the pen holder sends
	return false
}

// writeLoop writes until the queue is empty, or, if budget > 0, until
// budget bytes are written and then hands the pen to the writer goroutine.
// The caller holds the pen.
func (c *Conn) writeLoop(budget int) {
	c.w.mu.Lock()
	c.writeLoopLocked(budget)
}

// writeLoopLocked is writeLoop entered with writer.mu held, which saves a
// lock round trip for the goroutine that just queued its frames.
func (c *Conn) writeLoopLocked(budget int) {
	w := &c.w
	written := 0
	for first := true; ; first = false {
		if !first {
			w.mu.Lock()
		}
		if w.closed {
			w.busy = false
			w.mu.Unlock()
			return
		}
		if budget > 0 && written >= budget {
			if w.pending() {
				w.wake <- struct{}{} // the pen goes to the writer goroutine
			} else {
				w.busy = false
			}
			w.mu.Unlock()
			return
		}
		w.fillLocked()
		if len(w.buf) == 0 {
			w.busy = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()

		var err error
		for i, start := range w.recs {
			end := len(w.buf)
			if i+1 < len(w.recs) {
				end = w.recs[i+1]
			}
			pt := w.buf[start+recordHeaderLen : end-tagLen]
			if _, err = w.cipher.seal(pt); err != nil {
				break
			}
			binary.BigEndian.PutUint16(w.buf[start:], uint16(end-start-recordHeaderLen))
		}
		if err == nil {
			_, err = c.nc.Write(w.buf)
		}
		written += len(w.buf)
		w.buf, w.recs = w.buf[:0], w.recs[:0]
		if err != nil {
			c.closeWith(c.lostErr(err))
			w.mu.Lock()
			w.busy = false
			w.mu.Unlock()
			return
		}
		if w.closeInBuf {
			w.closeInBuf = false
			c.closeWritten.Store(true)
			c.checkDrain()
		}
	}
}

// writerLoop is the writer goroutine: it writes whenever handed the pen.
func (c *Conn) writerLoop() {
	for {
		select {
		case <-c.w.wake:
			c.writeLoop(0)
		case <-c.done:
			return
		}
	}
}

// submit queues a new sender.
func (c *Conn) submit(s *sender, direct bool) error {
	w := &c.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return c.Err()
	}
	w.enqueueLocked(s)
	if w.claimLocked(direct) {
		c.writeLoopLocked(directWriteBytes) // unlocks
		return nil
	}
	w.mu.Unlock()
	return nil
}

// submitResponse sets a response sender's message and queues it. It fails
// if the caller reset the stream meanwhile.
func (c *Conn) submitResponse(s *sender, hdr, body []byte, streamed bool) error {
	w := &c.w
	w.mu.Lock()
	if w.closed || s.aborted {
		w.mu.Unlock()
		return errAborted
	}
	s.setMessage(hdr, body, streamed)
	w.enqueueLocked(s)
	if w.claimLocked(true) {
		c.writeLoopLocked(directWriteBytes) // unlocks
		return nil
	}
	w.mu.Unlock()
	return nil
}

// sentOrDone returns nil if s is entirely written (or aborted), else a
// channel closed when it is. The channel is made only when needed: a
// small response written by submit needs none.
func (c *Conn) sentOrDone(s *sender) <-chan struct{} {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.finished || s.aborted {
		return nil
	}
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// submitChunk hands a chunk of stream bytes to s.
func (c *Conn) submitChunk(s *sender, b []byte, fin bool) error {
	w := &c.w
	w.mu.Lock()
	if w.closed || s.aborted {
		w.mu.Unlock()
		return errAborted
	}
	if len(b) > 0 {
		s.chunks = append(s.chunks, b)
	}
	s.fin = fin
	w.enqueueLocked(s)
	if w.claimLocked(true) {
		c.writeLoopLocked(directWriteBytes) // unlocks
		return nil
	}
	w.mu.Unlock()
	return nil
}

// addCredit applies a window update from the peer. Called by the read loop.
func (c *Conn) addCredit(s *sender, n int) error {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !s.streamed || s.credit+n > maxWindowBytes {
		return errors.New("window overflow")
	}
	s.credit += n
	w.enqueueLocked(s)
	w.claimLocked(false)
	return nil
}

// abortSender stops s; nothing more of it is written once this returns. It
// reports whether its header had been written (so the peer knows the
// stream).
func (c *Conn) abortSender(s *sender) (hdrSent bool) {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	s.end(true)
	return s.hdrSent
}

// queueCtrl queues a control frame.
func (c *Conn) queueCtrl(typ frameType, stream uint64, payload []byte, direct bool) {
	w := &c.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.ctrl = appendFrame(w.ctrl, typ, 0, stream, payload)
	if w.claimLocked(direct) {
		c.writeLoopLocked(directWriteBytes) // unlocks
		return
	}
	w.mu.Unlock()
}

func (c *Conn) sendWindow(stream uint64, n int, direct bool) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(n))
	c.queueCtrl(frameWindow, stream, p[:], direct)
}

func (c *Conn) sendReset(stream uint64, code byte, msg string, direct bool) {
	if len(msg) > maxResetMessage {
		msg = msg[:maxResetMessage]
	}
	p := make([]byte, 0, 1+len(msg))
	p = append(p, code)
	p = append(p, msg...)
	c.queueCtrl(frameReset, stream, p, direct)
}

// closeWriter stops all writing: pending senders are dropped.
func (c *Conn) closeWriter() {
	w := &c.w
	w.mu.Lock()
	w.closed = true
	for p := range w.rings {
		r := &w.rings[p]
		for s := r.front(); s != nil; s = r.front() {
			s.end(true)
			s.queued = false
			r.pop()
		}
	}
	w.ctrl = nil
	w.mu.Unlock()
}
