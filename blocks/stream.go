package blocks

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// BlockInfo describes one block of a stream.
type BlockInfo struct {
	Hash Hash
	Size int64 // raw bytes
}

// WriteStream cuts r into blocks of BlockSize bytes and stores each one
// with PutBlock. Several blocks are hashed, compressed and sent at once;
// each holds RAM budget (block_ram_buffer_max) from the moment it is read
// until it is stored, so memory does not grow with the stream's length,
// and streams wait for one another rather than exceed the budget.
//
// onBlock, if not nil, is called for each block in stream order once the
// block is on a write quorum, from one goroutine; an error from it stops
// the stream. The caller records the block there (and its reference, in
// the same batch as the entry that uses it): a stored block nobody
// references is collected after GCDelay. WriteStream returns the number of
// bytes read, and the first error of reading, storing or onBlock.
func (m *Manager) WriteStream(ctx context.Context, r io.Reader, onBlock func(i int, b BlockInfo) error) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type result struct {
		info BlockInfo
		err  error
	}
	n := inFlight()
	jobs := make(chan chan result, n)
	collected := make(chan error, 1)
	go func() {
		var first error
		i := 0
		for done := range jobs {
			res := <-done
			if first == nil {
				first = res.err
				if first == nil && onBlock != nil {
					first = onBlock(i, res.info)
				}
				if first != nil {
					cancel(first)
				}
			}
			i++
		}
		collected <- first
	}()

	size := m.bufSize()
	bs := m.cfg.BlockSize
	var total int64
	var readErr error
	for {
		if err := m.acquire(ctx, size); err != nil {
			readErr = context.Cause(ctx)
			break
		}
		buf := getBuf(size)
		raw := (*buf)[:bs]
		k, err := io.ReadFull(r, raw)
		if k == 0 {
			putBuf(buf)
			m.release(size)
			if err != io.EOF {
				readErr = err
			}
			break
		}
		raw = raw[:k]
		total += int64(k)
		done := make(chan result, 1)
		jobs <- done // at most n blocks wait for the collector
		go func() {
			h := Sum(raw)
			// body = hash ‖ stored form, built in place after the raw bytes
			off := bodyOffset(*buf, bs)
			body := append((*buf)[off:off], h[:]...)
			body = m.codec.Encode(body, raw)
			perr := m.putBlock(ctx, h, body, func() {
				putBuf(buf)
				m.release(size)
			})
			if perr == nil {
				m.stats.bytesWritten.Add(int64(len(raw)))
			}
			done <- result{BlockInfo{Hash: h, Size: int64(len(raw))}, perr}
		}()
		if err == io.ErrUnexpectedEOF {
			break // a short block ends the stream
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(jobs)
	err := <-collected
	if readErr != nil && err == nil {
		err = fmt.Errorf("blocks: reading the stream: %w", readErr)
	}
	return total, err
}

// NewReader returns a reader of the bytes [offset, offset+length) of the
// stream made of blocks (length < 0: to its end). Only the blocks that
// hold the range are fetched; the next ones are fetched ahead (up to
// four, within the RAM budget) while the caller reads. Close releases
// what was fetched ahead. The reader is an io.WriterTo: io.Copy writes
// from the fetched blocks, with no copy through a buffer of its own.
func (m *Manager) NewReader(ctx context.Context, blocks []BlockInfo, offset, length int64) (io.ReadCloser, error) {
	var total int64
	for _, b := range blocks {
		total += b.Size
	}
	if offset < 0 || offset > total {
		return nil, fmt.Errorf("blocks: offset %d outside a stream of %d bytes", offset, total)
	}
	if length < 0 || offset+length > total {
		length = total - offset
	}
	// skip the blocks before offset
	first := 0
	for first < len(blocks) && offset >= blocks[first].Size {
		offset -= blocks[first].Size
		first++
	}
	ctx, cancel := context.WithCancel(ctx)
	sr := &streamReader{m: m, ctx: ctx, cancel: cancel, skip: offset, left: length, queue: make(chan *fetch, 4), taken: make(chan struct{}, 1)}
	go sr.fetchAll(ctx, blocks[first:], offset+length)
	return sr, nil
}

// fetch is one block read ahead.
type fetch struct {
	done  chan struct{}
	buf   *[]byte
	size  int  // budget held
	ahead bool // fetched ahead of the reader (Manager.ahead counts it)
	data  []byte
	err   error
}

type streamReader struct {
	m      *Manager
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *fetch
	taken  chan struct{} // poked when the reader takes a fetch from queue
	cur    *fetch
	skip   int64 // bytes to skip in the next block
	left   int64 // bytes still to return
	err    error
	closed bool
}

// fetchAll starts the fetches of blocks in order, as many at once as the
// queue holds, until end bytes are covered.
func (sr *streamReader) fetchAll(ctx context.Context, blocks []BlockInfo, end int64) {
	defer close(sr.queue)
	for _, b := range blocks {
		if end <= 0 {
			return
		}
		end -= b.Size
		f := &fetch{done: make(chan struct{}), size: int(b.Size) + sr.m.cfg.BlockSize + HeaderLen}
		if err := sr.reserve(ctx, f); err != nil {
			return
		}
		select {
		case sr.queue <- f:
		case <-ctx.Done():
			sr.m.release(f.size)
			return
		}
		go func() {
			defer close(f.done)
			f.buf = getBuf(sr.m.bufSize())
			data, err := sr.m.getBlockIn(ctx, *f.buf, b.Hash)
			if err == nil && int64(len(data)) != b.Size {
				err = fmt.Errorf("blocks: block %s has %d bytes, the stream expects %d: %w", b.Hash, len(data), b.Size, ErrCorrupt)
			}
			if err == nil {
				sr.m.stats.bytesRead.Add(int64(len(data)))
			}
			f.data, f.err = data, err
		}()
	}
}

// reserve takes f's room in the RAM budget. The block the reader needs
// next (none is queued) waits for it. A block further ahead is fetched
// only while blocks fetched ahead, by every reader, hold less than half
// the budget (Manager.ahead): readers whose clients read slowly cannot
// hold the whole budget with blocks fetched ahead, leaving none for
// writes and for the first block of other reads. Otherwise it waits
// until the reader takes a queued block.
func (sr *streamReader) reserve(ctx context.Context, f *fetch) error {
	for {
		if len(sr.queue) == 0 {
			return sr.m.acquire(ctx, f.size)
		}
		if sr.m.reserveAhead(f.size) {
			f.ahead = true
			return nil
		}
		select {
		case <-sr.taken:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (sr *streamReader) Read(p []byte) (int, error) {
	data, err := sr.next()
	if err != nil {
		return 0, err
	}
	n := copy(p, data)
	sr.consume(n)
	return n, nil
}

// WriteTo writes the rest of the range to w straight from the fetched
// blocks, without the copy into a caller's buffer that Read makes; io.Copy
// uses it.
func (sr *streamReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		data, err := sr.next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(data)
		sr.consume(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(data) {
			return total, io.ErrShortWrite
		}
	}
}

// next returns the bytes of the current block still to be read, waiting
// for the next block when the current one is used up; io.EOF at the end
// of the range.
func (sr *streamReader) next() ([]byte, error) {
	if sr.err != nil {
		return nil, sr.err
	}
	if sr.left == 0 {
		sr.err = io.EOF
		return nil, io.EOF
	}
	for sr.cur == nil || len(sr.cur.data) == 0 {
		sr.drop()
		f, ok := <-sr.queue
		select {
		case sr.taken <- struct{}{}:
		default:
		}
		if !ok {
			// the fetcher stopped early: its context ended
			sr.err = sr.ctx.Err()
			if sr.err == nil {
				sr.err = io.ErrUnexpectedEOF
			}
			return nil, sr.err
		}
		<-f.done
		sr.cur = f
		if f.err != nil {
			sr.err = f.err
			return nil, f.err
		}
		f.data = f.data[min(sr.skip, int64(len(f.data))):]
		sr.skip = 0
	}
	return sr.cur.data[:min(int64(len(sr.cur.data)), sr.left)], nil
}

// consume marks n bytes of the current block read.
func (sr *streamReader) consume(n int) {
	sr.cur.data = sr.cur.data[n:]
	sr.left -= int64(n)
}

// drop gives back the buffer of the current block.
func (sr *streamReader) drop() {
	if f := sr.cur; f != nil {
		sr.cur = nil
		if f.buf != nil {
			putBuf(f.buf)
		}
		if f.ahead {
			sr.m.ahead.Add(-int64(f.size))
		}
		sr.m.release(f.size)
	}
}

func (sr *streamReader) Close() error {
	if sr.closed {
		return nil
	}
	sr.closed = true
	sr.cancel()
	sr.drop()
	for f := range sr.queue {
		<-f.done
		sr.cur = f
		sr.drop()
	}
	if sr.err == nil {
		sr.err = errors.New("blocks: stream reader closed")
	}
	return nil
}
