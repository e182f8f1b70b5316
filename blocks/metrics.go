package blocks

import (
	"time"
)

// Metrics is a snapshot of the block layer of this node, for the
// operator (the admin API's metrics endpoint exposes it).
type Metrics struct {
	Blocks      int64 `json:"blocks"`      // blocks stored on this node
	BytesOnDisk int64 `json:"bytesOnDisk"` // their files' bytes (compressed)
	BytesRaw    int64 `json:"bytesRaw"`    // their bytes before compression

	ResyncQueue  int64 `json:"resyncQueue"`  // entries in the resync queue
	ResyncErrors int64 `json:"resyncErrors"` // blocks whose last resync failed

	ReadErrors  int64 `json:"readErrors"`  // GetBlock calls no node could serve
	WriteErrors int64 `json:"writeErrors"` // PutBlock calls that missed their quorum
	Corruptions int64 `json:"corruptions"` // corrupt local copies found (read or scrub)

	BytesWritten int64 `json:"bytesWritten"` // raw bytes written through WriteStream
	BytesRead    int64 `json:"bytesRead"`    // raw bytes read through NewReader

	Scrub ScrubState `json:"scrub"`
	Dirs  []DirStats `json:"dirs"`
}

// Metrics returns a snapshot of the block layer's metrics.
func (m *Manager) Metrics() (Metrics, error) {
	st := m.store.Stats()
	out := Metrics{
		Blocks:       st.Blocks,
		BytesOnDisk:  st.Bytes,
		BytesRaw:     st.RawBytes,
		ReadErrors:   m.stats.readErrors.Load(),
		WriteErrors:  m.stats.writeErrors.Load(),
		Corruptions:  m.stats.corruptions.Load(),
		BytesWritten: m.stats.bytesWritten.Load(),
		BytesRead:    m.stats.bytesRead.Load(),
		Scrub:        m.ScrubStatus(),
		Dirs:         st.Dirs,
	}
	q, err := m.queueLen()
	if err != nil {
		return out, err
	}
	out.ResyncQueue = q
	errs, err := m.Errors()
	out.ResyncErrors = int64(len(errs))
	return out, err
}

// WorkerInfo describes one background worker: `grange worker list`.
type WorkerInfo struct {
	Name      string        `json:"name"`
	State     string        `json:"state"` // busy, idle, paused
	Done      int64         `json:"done"`
	Total     int64         `json:"total,omitempty"` // 0: unbounded (a queue)
	Queue     int64         `json:"queue,omitempty"`
	Rate      float64       `json:"rate"`          // items per second, lately
	ETA       time.Duration `json:"eta,omitempty"` // 0: unknown
	Errors    int64         `json:"errors"`
	LastError string        `json:"lastError,omitempty"`
}

// Workers describes the block layer's background workers.
func (m *Manager) Workers() []WorkerInfo {
	now := m.now()
	r := m.resync
	q, _ := m.queueLen()
	rs := WorkerInfo{Name: "block resync", State: "idle", Done: r.done.Load(), Queue: q, Errors: r.failed.Load()}
	if v, ok := r.lastErr.Load().(string); ok {
		rs.LastError = v
	}
	r.mu.Lock()
	if !r.busySince.IsZero() || r.scanning.Load() {
		rs.State = "busy"
	}
	if d := now.Sub(r.started).Seconds(); d >= 1 {
		rs.Rate = float64(rs.Done) / d
	}
	r.mu.Unlock()
	if rs.Rate > 0 && q > 0 {
		rs.ETA = time.Duration(float64(q) / rs.Rate * float64(time.Second))
	}

	s := m.scrub
	s.mu.Lock()
	sc := WorkerInfo{Name: "block scrub", State: "idle", Done: s.state.Done, Total: s.state.Total, Errors: s.state.Corrupt, Rate: s.rate.perSecond(time.Now())}
	switch {
	case s.state.Running && s.state.Paused:
		sc.State = "paused"
	case s.state.Running:
		sc.State = "busy"
	}
	s.mu.Unlock()
	if sc.State == "busy" && sc.Rate > 0 && sc.Total > sc.Done {
		sc.ETA = time.Duration(float64(sc.Total-sc.Done) / sc.Rate * float64(time.Second))
	}
	return []WorkerInfo{rs, sc}
}
