package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/k2v"
)

// Repairer is the node's table replication, as the repair operations see
// it.
type Repairer interface {
	FullSync(ctx context.Context) error
	SyncProgress() k2v.SyncProgress
}

// LaunchRepairOperationRequest is Garage's body of LaunchRepairOperation.
type LaunchRepairOperationRequest struct {
	RepairType RepairType `json:"repairType"`
}

// Repair types grange runs (Garage has more: versions, multipartUploads,
// blockRefs, blockRc, rebalance).
const (
	// RepairTables is a full anti-entropy pass of every table.
	RepairTables = "tables"
	// RepairBlocks queues every block this node holds or references for
	// resync.
	RepairBlocks = "blocks"
	// RepairScrub drives the scrub worker; RepairType.Scrub says how.
	RepairScrub = "scrub"
)

// RepairType is Garage's repairType: a name ("tables", "blocks") or, for
// the scrub, an object naming the command: {"scrub": "start"} (start,
// pause, resume or cancel).
type RepairType struct {
	Name  string
	Scrub blocks.ScrubCommand // set when Name is "scrub"
}

// MarshalJSON writes one of the two shapes.
func (r RepairType) MarshalJSON() ([]byte, error) {
	if r.Name == RepairScrub {
		return json.Marshal(map[string]blocks.ScrubCommand{RepairScrub: r.Scrub})
	}
	return json.Marshal(r.Name)
}

// UnmarshalJSON reads either shape.
func (r *RepairType) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		if name == RepairScrub {
			return errors.New(`repairType "scrub" needs a command: {"scrub": "start"} (or pause, resume, cancel)`)
		}
		*r = RepairType{Name: name}
		return nil
	}
	var v map[string]string
	if err := json.Unmarshal(b, &v); err != nil || len(v) != 1 {
		return fmt.Errorf(`repairType %s: want a name like "tables" or {"scrub": "start"}`, b)
	}
	cmd, ok := v[RepairScrub]
	if !ok {
		return fmt.Errorf(`repairType %s: the only repair with a command is {"scrub": ...}`, b)
	}
	*r = RepairType{Name: RepairScrub, Scrub: blocks.ScrubCommand(cmd)}
	return nil
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
	var req LaunchRepairOperationRequest
	if err := json.Unmarshal(rc.PostBody(), &req); err != nil {
		return nil, badRequest("body: %v", err)
	}
	switch rt := req.RepairType; rt.Name {
	case RepairTables:
		if s.cfg.Repair == nil {
			return nil, badRequest("this node has no replicated tables")
		}
		go func() {
			if err := s.cfg.Repair.FullSync(context.Background()); err != nil {
				s.log.Warn("table repair incomplete", "err", err)
			}
		}()
	case RepairBlocks:
		if s.cfg.Blocks == nil {
			return nil, errNoBlocks
		}
		s.cfg.Blocks.RepairBlocks()
		s.log.Info("block repair launched: every block queued for resync")
	case RepairScrub:
		if s.cfg.Blocks == nil {
			return nil, errNoBlocks
		}
		if err := s.scrub(rt.Scrub); err != nil {
			return nil, err
		}
	case "":
		return nil, badRequest(`repairType is required: "tables", "blocks" or {"scrub": "start"|"pause"|"resume"|"cancel"}`)
	default:
		return nil, badRequest(`repairType %q: grange supports "tables", "blocks" and {"scrub": "start"|"pause"|"resume"|"cancel"}`, rt.Name)
	}
	return struct{}{}, nil
}

// scrub applies a scrub command. Pausing or resuming needs a pass under
// way: that is the caller's mistake, a 400.
func (s *Server) scrub(cmd blocks.ScrubCommand) error {
	switch cmd {
	case blocks.ScrubStart, blocks.ScrubCancel:
	case blocks.ScrubPause, blocks.ScrubResume:
		if !s.cfg.Blocks.ScrubStatus().Running {
			return badRequest("no scrub is running: start one with {\"scrub\": \"start\"}")
		}
	default:
		return badRequest(`scrub command %q: want "start", "pause", "resume" or "cancel"`, cmd)
	}
	if err := s.cfg.Blocks.Scrub(cmd); err != nil {
		return err
	}
	s.log.Info("scrub command applied", "command", string(cmd))
	return nil
}

func (s *Server) getTableSyncStatus(*fasthttp.RequestCtx) (any, error) {
	if s.cfg.Repair == nil {
		return nil, badRequest("this node has no replicated tables")
	}
	p := s.cfg.Repair.SyncProgress()
	out := &TableSyncStatus{Running: p.Running, Done: p.Done, Total: p.Total, Version: p.Version, SyncedLayout: p.Synced}
	out.StartedAt, out.FinishedAt = stamp(p.Started), stamp(p.Finished)
	if p.Err != "" {
		out.Error = &p.Err
	}
	return out, nil
}
