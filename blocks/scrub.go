package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/grangeio/grange/k2v"
)

// Scrub.
//
// The scrub worker re-reads every block this node stores, at most
// ScrubRate bytes per second, and checks it against its hash. A corrupt
// copy is quarantined (kept aside as <hash>.corrupted for the operator)
// and queued for resync, which fetches a sound copy from another node. A
// full pass starts by itself ScrubInterval after the previous one ended,
// or on `grange repair scrub start`; it can be paused, resumed and
// cancelled. Its state is saved in node-local space (blocks/scrub), so a
// restart resumes a pass where it was.
type scrubber struct {
	m    *Manager
	wake chan struct{}

	mu    sync.Mutex
	state ScrubState
	rate  rateMeter
}

// ScrubState is the scrub worker's state, as saved and as reported.
type ScrubState struct {
	Running       bool      `json:"running"` // a pass is under way (maybe paused)
	Paused        bool      `json:"paused"`
	Started       time.Time `json:"started,omitzero"`
	LastCompleted time.Time `json:"lastCompleted,omitzero"`
	Done          int64     `json:"done"`  // blocks checked in this pass
	Total         int64     `json:"total"` // blocks stored when the pass started
	Corrupt       int64     `json:"corrupt"`
}

// ScrubCommand drives the scrub worker.
type ScrubCommand string

const (
	ScrubStart  ScrubCommand = "start"
	ScrubPause  ScrubCommand = "pause"
	ScrubResume ScrubCommand = "resume"
	ScrubCancel ScrubCommand = "cancel"
)

func newScrubber(m *Manager) *scrubber {
	s := &scrubber{m: m, wake: make(chan struct{}, 1)}
	if v, err := m.db.GetLocal(scrubKey); err == nil && v != nil {
		if err := json.Unmarshal(v, &s.state); err != nil {
			m.log.Warn("scrub state unreadable; starting afresh", "err", err)
			s.state = ScrubState{}
		}
	}
	if s.state.LastCompleted.IsZero() && !s.state.Running {
		// first start: count from now, not from the epoch
		s.state.LastCompleted = m.now()
		s.save()
	}
	return s
}

// Scrub applies a command to the scrub worker.
func (m *Manager) Scrub(cmd ScrubCommand) error {
	s := m.scrub
	s.mu.Lock()
	switch cmd {
	case ScrubStart:
		if s.state.Running {
			s.state.Paused = false
		} else {
			s.begin()
		}
	case ScrubPause:
		if !s.state.Running {
			s.mu.Unlock()
			return errors.New("blocks: no scrub is running")
		}
		s.state.Paused = true
	case ScrubResume:
		if !s.state.Running {
			s.mu.Unlock()
			return errors.New("blocks: no scrub is running")
		}
		s.state.Paused = false
	case ScrubCancel:
		s.state.Running, s.state.Paused = false, false
		s.state.LastCompleted = m.now() // next automatic pass in ScrubInterval
	default:
		s.mu.Unlock()
		return errors.New("blocks: scrub command must be start, pause, resume or cancel")
	}
	s.mu.Unlock()
	s.save()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// ScrubStatus reports the scrub worker's state.
func (m *Manager) ScrubStatus() ScrubState {
	m.scrub.mu.Lock()
	defer m.scrub.mu.Unlock()
	return m.scrub.state
}

// begin starts a pass. Under s.mu.
func (s *scrubber) begin() {
	s.state = ScrubState{Running: true, Started: s.m.now(), Total: s.m.store.Stats().Blocks, LastCompleted: s.state.LastCompleted}
	s.rate = rateMeter{}
}

func (s *scrubber) save() {
	s.mu.Lock()
	v, _ := json.Marshal(s.state)
	s.mu.Unlock()
	if err := s.m.db.Update(func(b *k2v.Batch) error { return b.SetLocal(scrubKey, v) }); err != nil {
		s.m.log.Error("saving the scrub state failed", "err", err)
	}
}

func (s *scrubber) run(ctx context.Context) {
	for ctx.Err() == nil {
		s.mu.Lock()
		if !s.state.Running && s.m.now().Sub(s.state.LastCompleted) >= s.m.cfg.ScrubInterval {
			s.begin()
		}
		active := s.state.Running && !s.state.Paused
		s.mu.Unlock()
		if active {
			s.pass(ctx)
			continue
		}
		t := time.NewTimer(time.Minute)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// pass checks blocks from where the pass stands until it ends, is
// paused or cancelled, or ctx ends.
func (s *scrubber) pass(ctx context.Context) {
	m := s.m
	s.mu.Lock()
	skip := s.state.Done
	s.mu.Unlock()
	stop := errors.New("stop")
	var seen int64
	lastSave := time.Now()
	buf := make([]byte, 0, m.cfg.BlockSize)
	err := m.store.Walk(ctx, func(h Hash, size int64) error {
		if seen++; seen <= skip {
			return nil // checked before a restart or a pause
		}
		s.mu.Lock()
		active := s.state.Running && !s.state.Paused
		s.mu.Unlock()
		if !active {
			return stop
		}
		if err := s.check(h, buf); err != nil {
			m.log.Warn("scrub could not read a block", "block", h, "err", err)
		}
		s.mu.Lock()
		s.state.Done++
		s.rate.add(time.Now(), 1)
		s.mu.Unlock()
		if time.Since(lastSave) > 10*time.Second {
			s.save()
			lastSave = time.Now()
		}
		// throttle: size bytes at ScrubRate
		d := time.Duration(float64(size) / float64(m.cfg.ScrubRate) * float64(time.Second))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		return nil
	})
	if ctx.Err() != nil {
		s.save()
		return
	}
	s.mu.Lock()
	if err == nil && s.state.Running && !s.state.Paused {
		s.state.Running = false
		s.state.LastCompleted = m.now()
		m.log.Info("scrub pass finished", "blocks", s.state.Done, "corrupt", s.state.Corrupt)
	}
	s.mu.Unlock()
	if err != nil && !errors.Is(err, stop) {
		m.log.Error("scrub pass failed", "err", err)
	}
	s.save()
}

// check reads h and verifies it; a corrupt copy is quarantined and
// fetched again.
func (s *scrubber) check(h Hash, buf []byte) error {
	_, err := s.m.getLocal(buf[:0], h) // quarantines and queues a corrupt copy
	switch {
	case errors.Is(err, ErrNotFound):
		return nil // deleted meanwhile
	case errors.Is(err, ErrCorrupt):
		s.mu.Lock()
		s.state.Corrupt++
		s.mu.Unlock()
		return nil
	}
	return err
}

// rateMeter estimates a rate over the last minute.
type rateMeter struct {
	start time.Time
	n     int64
}

func (r *rateMeter) add(now time.Time, n int64) {
	if r.start.IsZero() || now.Sub(r.start) > time.Minute {
		r.start, r.n = now, 0
	}
	r.n += n
}

func (r *rateMeter) perSecond(now time.Time) float64 {
	d := now.Sub(r.start).Seconds()
	if r.start.IsZero() || d < 1 {
		return 0
	}
	return float64(r.n) / d
}
