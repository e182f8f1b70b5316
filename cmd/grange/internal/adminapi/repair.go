package adminapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/k2v"
)

// Repairer is the node's table replication, as the repair operations see
// it.
type Repairer interface {
	FullSync(ctx context.Context) error
	SyncProgress() k2v.SyncProgress
}

// LaunchRepairOperationRequest is Garage's body of LaunchRepairOperation;
// grange knows the "tables" repair.
type LaunchRepairOperationRequest struct {
	RepairType string `json:"repairType"`
}

// TableSyncStatus is grange's GetTableSyncStatus answer: the anti-entropy
// pass in progress or the last one, on the node that answers.
type TableSyncStatus struct {
	Running      bool    `json:"running"`
	Done         int     `json:"done"`
	Total        int     `json:"total"`
	Version      uint64  `json:"layoutVersion"`
	SyncedLayout uint64  `json:"syncedLayoutVersion"`
	StartedAt    *string `json:"startedAt"`
	FinishedAt   *string `json:"finishedAt"`
	Error        *string `json:"error"`
}

func (s *Server) launchRepairOperation(rc *fasthttp.RequestCtx) (any, error) {
	if s.cfg.Repair == nil {
		return nil, badRequest("this node has no replicated tables")
	}
	var req LaunchRepairOperationRequest
	if err := json.Unmarshal(rc.PostBody(), &req); err != nil {
		return nil, badRequest("body: %v", err)
	}
	if req.RepairType != "tables" {
		return nil, badRequest(`repairType: grange supports "tables"`)
	}
	go func() {
		if err := s.cfg.Repair.FullSync(context.Background()); err != nil {
			s.log.Warn("table repair incomplete", "err", err)
		}
	}()
	return struct{}{}, nil
}

func (s *Server) getTableSyncStatus(*fasthttp.RequestCtx) (any, error) {
	if s.cfg.Repair == nil {
		return nil, badRequest("this node has no replicated tables")
	}
	p := s.cfg.Repair.SyncProgress()
	out := &TableSyncStatus{Running: p.Running, Done: p.Done, Total: p.Total, Version: p.Version, SyncedLayout: p.Synced}
	stamp := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		v := t.UTC().Format(time.RFC3339Nano)
		return &v
	}
	out.StartedAt, out.FinishedAt = stamp(p.Started), stamp(p.Finished)
	if p.Err != "" {
		out.Error = &p.Err
	}
	return out, nil
}
