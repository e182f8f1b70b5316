package adminapi

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/blocks"
)

// Blocks is the node's block store as the admin API uses it
// (*blocks.Manager).
type Blocks interface {
	// Errors lists the blocks whose resync failed.
	Errors() ([]blocks.BlockError, error)
	// Workers describes the block store's background workers.
	Workers() []blocks.WorkerInfo
	// RepairBlocks queues every block for resync.
	RepairBlocks()
	// Scrub applies a command to the scrub worker; ScrubStatus reports it.
	Scrub(cmd blocks.ScrubCommand) error
	ScrubStatus() blocks.ScrubState
	// Metrics is a snapshot of the block store's counters.
	Metrics() (blocks.Metrics, error)
}

var errNoBlocks = &apiError{400, "InvalidRequest", "this node has no block store"}

// BlockErrorResp is a block whose resync failed on the node (Garage's
// ListBlockErrors element). Garage's refcount is not reported yet.
type BlockErrorResp struct {
	BlockHash      string `json:"blockHash"`
	ErrorCount     uint64 `json:"errorCount"`
	LastTrySecsAgo uint64 `json:"lastTrySecsAgo"`
	NextTryInSecs  uint64 `json:"nextTryInSecs"`
	// LastError is grange's own: why the last try failed.
	LastError string `json:"lastError"`
}

// ListBlockErrorsResponse is the response of ListBlockErrors (GET, with
// ?node=): per node, its blocks in error, most failures first.
type ListBlockErrorsResponse = MultiResponse[[]BlockErrorResp]

func (s *Server) listBlockErrors(rc *fasthttp.RequestCtx) (any, error) {
	if s.cfg.Blocks == nil {
		return nil, errNoBlocks
	}
	return forNode(s, rc, "ListBlockErrors", func() ([]BlockErrorResp, error) {
		errs, err := s.cfg.Blocks.Errors()
		if err != nil {
			return nil, err
		}
		now := s.cfg.Now()
		out := make([]BlockErrorResp, 0, len(errs))
		for _, e := range errs {
			out = append(out, BlockErrorResp{
				BlockHash:      e.Hash.String(),
				ErrorCount:     uint64(max(e.Failures, 0)),
				LastTrySecsAgo: secs(now.Sub(e.LastTry)),
				NextTryInSecs:  secs(e.NextTry.Sub(now)),
				LastError:      e.Message,
			})
		}
		// stable order for the operator: most failures first, then hash
		slices.SortFunc(out, func(a, b BlockErrorResp) int {
			return cmp.Or(cmp.Compare(b.ErrorCount, a.ErrorCount), strings.Compare(a.BlockHash, b.BlockHash))
		})
		return out, nil
	})
}

// secs is d in whole seconds, 0 when negative.
func secs(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d / time.Second)
}

// LocalGetNodeStatisticsResponse is one node's answer to GetNodeStatistics
// (GET, with ?node=): Garage's free-form text, and grange's typed block
// store counters.
type LocalGetNodeStatisticsResponse struct {
	Freeform string           `json:"freeform"`
	Blocks   *BlockStatistics `json:"blocks,omitempty"`
}

// GetNodeStatisticsResponse is the response of GetNodeStatistics.
type GetNodeStatisticsResponse = MultiResponse[LocalGetNodeStatisticsResponse]

// BlockStatistics are the block store counters of a node.
type BlockStatistics struct {
	// Blocks stored on the node, their bytes on disk (compressed, headers
	// included) and before compression.
	Blocks      int64 `json:"blocks"`
	BytesOnDisk int64 `json:"bytesOnDisk"`
	BytesRaw    int64 `json:"bytesRaw"`
	// ResyncQueueLength counts the entries of the resync queue;
	// ResyncErrors the blocks whose last resync failed (ListBlockErrors).
	ResyncQueueLength int64 `json:"resyncQueueLength"`
	ResyncErrors      int64 `json:"resyncErrors"`
	// Since the node started: reads no node could serve, writes that
	// missed their quorum, corrupt local copies found.
	ReadErrors   int64 `json:"readErrors"`
	WriteErrors  int64 `json:"writeErrors"`
	Corruptions  int64 `json:"corruptions"`
	BytesWritten int64 `json:"bytesWritten"`
	BytesRead    int64 `json:"bytesRead"`
	// Scrub is the scrub worker's pass in progress or the last one.
	Scrub    ScrubStatus         `json:"scrub"`
	DataDirs []DataDirStatistics `json:"dataDirs"`
}

// ScrubStatus is the state of a node's scrub worker.
type ScrubStatus struct {
	Running bool `json:"running"` // a pass is under way, maybe paused
	Paused  bool `json:"paused"`
	// StartedAt and LastCompletedAt are RFC 3339 times, null when never.
	StartedAt       *string `json:"startedAt"`
	LastCompletedAt *string `json:"lastCompletedAt"`
	Done            int64   `json:"done"`  // blocks checked in this pass
	Total           int64   `json:"total"` // blocks stored when it started
	Corrupt         int64   `json:"corrupt"`
}

// DataDirStatistics describes one data directory.
type DataDirStatistics struct {
	Path string `json:"path"`
}

func (s *Server) getNodeStatistics(rc *fasthttp.RequestCtx) (any, error) {
	return forNode(s, rc, "GetNodeStatistics", func() (LocalGetNodeStatisticsResponse, error) {
		var out LocalGetNodeStatisticsResponse
		var b strings.Builder
		fmt.Fprintf(&b, "grange version: %s\n", s.version())
		if s.cfg.Blocks != nil {
			m, err := s.cfg.Blocks.Metrics()
			if err != nil {
				return out, err
			}
			out.Blocks = blockStatistics(m)
			fmt.Fprintf(&b, "\nBlock manager stats:\n  blocks stored: %d (%d bytes on disk, %d before compression)\n  resync queue length: %d\n  blocks with resync errors: %d\n",
				m.Blocks, m.BytesOnDisk, m.BytesRaw, m.ResyncQueue, m.ResyncErrors)
		}
		out.Freeform = b.String()
		return out, nil
	})
}

func blockStatistics(m blocks.Metrics) *BlockStatistics {
	out := &BlockStatistics{
		Blocks: m.Blocks, BytesOnDisk: m.BytesOnDisk, BytesRaw: m.BytesRaw,
		ResyncQueueLength: m.ResyncQueue, ResyncErrors: m.ResyncErrors,
		ReadErrors: m.ReadErrors, WriteErrors: m.WriteErrors, Corruptions: m.Corruptions,
		BytesWritten: m.BytesWritten, BytesRead: m.BytesRead,
		Scrub: ScrubStatus{
			Running: m.Scrub.Running, Paused: m.Scrub.Paused,
			StartedAt: stamp(m.Scrub.Started), LastCompletedAt: stamp(m.Scrub.LastCompleted),
			Done: m.Scrub.Done, Total: m.Scrub.Total, Corrupt: m.Scrub.Corrupt,
		},
		DataDirs: make([]DataDirStatistics, 0, len(m.Dirs)),
	}
	for _, d := range m.Dirs {
		out.DataDirs = append(out.DataDirs, DataDirStatistics{Path: d.Path})
	}
	return out
}

// stamp is t in RFC 3339, nil when zero.
func stamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339Nano)
	return &v
}
