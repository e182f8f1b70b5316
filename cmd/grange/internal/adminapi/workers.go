package adminapi

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// ListWorkersRequest is the body of ListWorkers (POST, with ?node=); an
// empty body lists every worker.
type ListWorkersRequest struct {
	// BusyOnly keeps the workers doing something now.
	BusyOnly bool `json:"busyOnly"`
	// ErrorOnly keeps the workers that failed at least once.
	ErrorOnly bool `json:"errorOnly"`
}

// WorkerInfoResp describes one background worker, with Garage's field
// names; Garage's tranquility and consecutiveErrors are not reported.
type WorkerInfoResp struct {
	// ID numbers the workers of a node, in a stable order.
	ID   uint64 `json:"id"`
	Name string `json:"name"`
	// State is "busy" or "idle", or grange's "paused" (a paused scrub;
	// Garage reports it idle).
	State  string `json:"state"`
	Errors uint64 `json:"errors"`
	// LastError is null when the worker never failed.
	LastError *WorkerLastError `json:"lastError"`
	// Progress is "done/total" for a worker with an end (a scrub pass, a
	// table sync), null for a queue.
	Progress *string `json:"progress"`
	// QueueLength is set for a worker that drains a queue.
	QueueLength *uint64 `json:"queueLength"`
	// PersistentErrors counts the items in error that are retried later
	// (blocks whose resync failed).
	PersistentErrors *uint64  `json:"persistentErrors"`
	Freeform         []string `json:"freeform"`
	// Rate (items per second lately) and ETASecs (null: unknown) are
	// grange's own.
	Rate    float64 `json:"rate"`
	ETASecs *uint64 `json:"etaSecs"`
}

// WorkerLastError is the last error of a worker. SecsAgo is null when
// the worker does not know when it happened.
type WorkerLastError struct {
	Message string  `json:"message"`
	SecsAgo *uint64 `json:"secsAgo"`
}

// ListWorkersResponse is the response of ListWorkers.
type ListWorkersResponse = MultiResponse[[]WorkerInfoResp]

func (s *Server) listWorkers(rc *fasthttp.RequestCtx) (any, error) {
	var req ListWorkersRequest
	if len(rc.PostBody()) > 0 {
		if err := decode(rc, &req); err != nil {
			return nil, err
		}
	}
	return forNode(s, rc, "ListWorkers", func() ([]WorkerInfoResp, error) {
		all := s.workers()
		out := make([]WorkerInfoResp, 0, len(all))
		for _, w := range all {
			if req.BusyOnly && w.State != "busy" {
				continue
			}
			if req.ErrorOnly && w.Errors == 0 && w.LastError == nil {
				continue
			}
			out = append(out, w)
		}
		return out, nil
	})
}

// workers describes this node's background workers: the table sync, then
// the block store's.
func (s *Server) workers() []WorkerInfoResp {
	var out []WorkerInfoResp
	if s.cfg.Repair != nil {
		p := s.cfg.Repair.SyncProgress()
		w := WorkerInfoResp{Name: "table sync", State: "idle", Freeform: []string{}}
		if p.Running {
			w.State = "busy"
		}
		if p.Total > 0 {
			w.Progress = ptr(fmt.Sprintf("%d/%d", p.Done, p.Total))
		}
		if p.Err != "" {
			w.LastError = &WorkerLastError{Message: p.Err}
			if !p.Finished.IsZero() {
				w.LastError.SecsAgo = ptr(secs(s.cfg.Now().Sub(p.Finished)))
			}
		}
		if p.Synced > 0 {
			w.Freeform = append(w.Freeform, fmt.Sprintf("layout version %d synced on this node", p.Synced))
		}
		out = append(out, w)
	}
	if s.cfg.Blocks != nil {
		for _, bw := range s.cfg.Blocks.Workers() {
			w := WorkerInfoResp{Name: bw.Name, State: bw.State, Errors: uint64(max(bw.Errors, 0)), Rate: bw.Rate, Freeform: []string{}}
			if bw.LastError != "" {
				w.LastError = &WorkerLastError{Message: bw.LastError}
			}
			if bw.Total > 0 {
				w.Progress = ptr(fmt.Sprintf("%d/%d", bw.Done, bw.Total))
			}
			if bw.Name == blockResyncWorker {
				w.QueueLength = ptr(uint64(max(bw.Queue, 0)))
				w.Freeform = append(w.Freeform, fmt.Sprintf("%d blocks processed since start", bw.Done))
				if errs, err := s.cfg.Blocks.Errors(); err == nil {
					w.PersistentErrors = ptr(uint64(len(errs)))
				}
			}
			if bw.ETA > 0 {
				w.ETASecs = ptr(uint64((bw.ETA + time.Second - 1) / time.Second))
			}
			out = append(out, w)
		}
	}
	for i := range out {
		out[i].ID = uint64(i + 1)
	}
	return out
}

// blockResyncWorker is the name blocks.Manager.Workers gives the resync
// worker, the one that drains a queue and keeps blocks in error.
const blockResyncWorker = "block resync"

func ptr[T any](v T) *T { return &v }
