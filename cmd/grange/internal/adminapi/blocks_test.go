package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/k2v"
)

// fakeBlocks is a block store with canned errors, workers and metrics,
// and a scrub that follows its commands as blocks.Manager does.
type fakeBlocks struct {
	now time.Time

	mu         sync.Mutex
	scrub      blocks.ScrubState
	repairs    int
	metricsErr error
}

func (f *fakeBlocks) Errors() ([]blocks.BlockError, error) {
	return []blocks.BlockError{
		{Hash: blocks.Sum([]byte("a")), Failures: 1, LastTry: f.now.Add(-90 * time.Second), NextTry: f.now.Add(-time.Second), Message: "no other node should hold this block"},
		{Hash: blocks.Sum([]byte("b")), Failures: 4, LastTry: f.now.Add(-3 * time.Minute), NextTry: f.now.Add(77 * time.Second), Message: "no node gave a sound copy: node 0011: timeout\nnode 2233: blocks: corrupt block"},
	}, nil
}

func (f *fakeBlocks) Workers() []blocks.WorkerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc := blocks.WorkerInfo{Name: "block scrub", State: "idle", Done: f.scrub.Done, Total: f.scrub.Total}
	switch {
	case f.scrub.Running && f.scrub.Paused:
		sc.State = "paused"
	case f.scrub.Running:
		sc.State, sc.Rate, sc.ETA = "busy", 12.5, 8*time.Second
	}
	return []blocks.WorkerInfo{
		{Name: "block resync", State: "busy", Done: 40, Queue: 5, Rate: 2.5, ETA: 2 * time.Second, Errors: 7, LastError: "no node gave a sound copy: node 0011: timeout"},
		sc,
	}
}

func (f *fakeBlocks) RepairBlocks() {
	f.mu.Lock()
	f.repairs++
	f.mu.Unlock()
}

func (f *fakeBlocks) Scrub(cmd blocks.ScrubCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch cmd {
	case blocks.ScrubStart:
		if !f.scrub.Running {
			f.scrub = blocks.ScrubState{Running: true, Started: f.now, Total: 100, Done: 0}
		}
		f.scrub.Paused = false
	case blocks.ScrubPause:
		f.scrub.Paused = true
	case blocks.ScrubResume:
		f.scrub.Paused = false
	case blocks.ScrubCancel:
		f.scrub.Running, f.scrub.Paused, f.scrub.LastCompleted = false, false, f.now
	}
	return nil
}

func (f *fakeBlocks) ScrubStatus() blocks.ScrubState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scrub
}

func (f *fakeBlocks) Metrics() (blocks.Metrics, error) {
	f.mu.Lock()
	err := f.metricsErr
	f.mu.Unlock()
	if err != nil {
		return blocks.Metrics{}, err
	}
	return blocks.Metrics{
		Blocks: 1200, BytesOnDisk: 700 << 20, BytesRaw: 1 << 30,
		ResyncQueue: 5, ResyncErrors: 2,
		ReadErrors: 1, WriteErrors: 0, Corruptions: 3,
		BytesWritten: 2 << 30, BytesRead: 3 << 30,
		Scrub: f.ScrubStatus(),
		Dirs:  []blocks.DirStats{{Path: "/srv/grange/data"}},
	}, nil
}

// fakeRepair is a table replication whose last pass ended in error.
type fakeRepair struct{ now time.Time }

func (fakeRepair) FullSync(context.Context) error { return nil }
func (r fakeRepair) SyncProgress() k2v.SyncProgress {
	return k2v.SyncProgress{Done: 250, Total: 256, Version: 3, Synced: 2, Started: r.now.Add(-time.Minute), Finished: r.now.Add(-30 * time.Second), Err: "partition 17: no quorum"}
}

// The block store's operations through the HTTP server;
// testdata/blocks_ops.txt pins the JSON shapes.
func TestBlockOperations(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fb := &fakeBlocks{now: now}
	c, cl := startServer(t, 1, func(cfg *Config) {
		cfg.Blocks, cfg.Repair = fb, fakeRepair{now}
		cfg.Now = func() time.Time { return now }
	})
	tr := &transcript{t: t, c: c}
	selfQ := url.Values{"node": {"self"}}
	other := strings.Repeat("ab", 32)

	if err := tr.call("GET", "ListBlockErrors", nil, "", nil); err == nil || err.Status != 400 || !strings.Contains(err.Message, "node is required") {
		t.Errorf("ListBlockErrors without node: %v", err)
	}
	var errs ListBlockErrorsResponse
	tr.mustCall("GET", "ListBlockErrors", selfQ, "", &errs)
	got := errs.Success[cl.ID().String()]
	if len(got) != 2 || got[0].ErrorCount != 4 || got[0].NextTryInSecs != 77 || got[0].LastTrySecsAgo != 180 || got[1].NextTryInSecs != 0 {
		t.Errorf("block errors: %+v", got)
	}
	var otherErrs ListBlockErrorsResponse
	tr.mustCall("GET", "ListBlockErrors", url.Values{"node": {other}}, "", &otherErrs)
	if len(otherErrs.Success) != 0 || !strings.Contains(otherErrs.Error[other], "ask that node") {
		t.Errorf("block errors of another node: %+v", otherErrs)
	}

	var ws ListWorkersResponse
	tr.mustCall("POST", "ListWorkers", selfQ, "", &ws)
	if w := ws.Success[cl.ID().String()]; len(w) != 3 || w[0].Name != "table sync" || w[1].Name != "block resync" || *w[1].PersistentErrors != 2 || *w[1].QueueLength != 5 || w[2].State != "idle" {
		t.Errorf("workers: %+v", w)
	}
	tr.mustCall("POST", "ListWorkers", selfQ, `{"busyOnly":true}`, &ws)
	if w := ws.Success[cl.ID().String()]; len(w) != 1 || w[0].Name != "block resync" || w[0].ID != 2 {
		t.Errorf("busy workers: %+v", w)
	}
	tr.mustCall("POST", "ListWorkers", selfQ, `{"errorOnly":true}`, &ws)
	if w := ws.Success[cl.ID().String()]; len(w) != 2 {
		t.Errorf("workers with errors: %+v", w)
	}
	tr.mustFail("POST", "ListWorkers", `{"busy":true}`, "InvalidRequest", "unknown field")

	var stats GetNodeStatisticsResponse
	tr.mustCall("GET", "GetNodeStatistics", selfQ, "", &stats)
	if b := stats.Success[cl.ID().String()].Blocks; b == nil || b.Blocks != 1200 || b.ResyncErrors != 2 || len(b.DataDirs) != 1 {
		t.Errorf("statistics: %+v", stats)
	}

	repair := func(body string) {
		t.Helper()
		tr.mustCall("POST", "LaunchRepairOperation", nil, body, nil)
	}
	repair(`{"repairType":"blocks"}`)
	fb.mu.Lock()
	if fb.repairs != 1 {
		t.Errorf("%d block repairs launched, want 1", fb.repairs)
	}
	fb.mu.Unlock()
	tr.mustFail("POST", "LaunchRepairOperation", `{"repairType":{"scrub":"pause"}}`, "InvalidRequest", "no scrub is running")
	repair(`{"repairType":{"scrub":"start"}}`)
	repair(`{"repairType":{"scrub":"pause"}}`)
	tr.mustCall("POST", "ListWorkers", selfQ, "", &ws)
	if w := ws.Success[cl.ID().String()]; w[2].State != "paused" || *w[2].Progress != "0/100" {
		t.Errorf("paused scrub: %+v", w[2])
	}
	repair(`{"repairType":{"scrub":"resume"}}`)
	tr.mustCall("GET", "GetNodeStatistics", selfQ, "", &stats)
	if sc := stats.Success[cl.ID().String()].Blocks.Scrub; !sc.Running || sc.Paused || sc.StartedAt == nil {
		t.Errorf("resumed scrub: %+v", sc)
	}
	repair(`{"repairType":{"scrub":"cancel"}}`)
	if st := fb.ScrubStatus(); st.Running {
		t.Errorf("scrub still running after cancel: %+v", st)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"repairType":{"scrub":"stop"}}`, `scrub command "stop"`},
		{`{"repairType":"scrub"}`, "needs a command"},
		{`{"repairType":"versions"}`, `grange supports "tables", "blocks"`},
		{`{"repairType":{"rebalance":"now"}}`, "the only repair with a command"},
		{`{"repairType":{"scrub":"start","x":"y"}}`, "want a name"},
		{`{}`, "repairType is required"},
	} {
		tr.mustFail("POST", "LaunchRepairOperation", tt.body, "InvalidRequest", tt.want)
	}

	// a failing store is this node's entry in the error map
	fb.mu.Lock()
	fb.metricsErr = errors.New("pebble: closed")
	fb.mu.Unlock()
	var failed GetNodeStatisticsResponse
	tr.mustCall("GET", "GetNodeStatistics", selfQ, "", &failed)
	if len(failed.Success) != 0 || failed.Error[cl.ID().String()] != "pebble: closed" {
		t.Errorf("statistics of a failing store: %+v", failed)
	}

	out := strings.ReplaceAll(tr.buf.String(), cl.ID().String(), "<self>")
	checkGolden(t, "blocks_ops.txt", out)
}

// Without a block store, the block operations are refused and the node
// statistics carry no block counters.
func TestNoBlockStore(t *testing.T) {
	c, _ := startServer(t, 1)
	tr := &transcript{t: t, c: c}
	selfQ := url.Values{"node": {"self"}}
	if err := tr.call("GET", "ListBlockErrors", selfQ, "", nil); err == nil || !strings.Contains(err.Message, "no block store") {
		t.Errorf("ListBlockErrors: %v", err)
	}
	tr.mustFail("POST", "LaunchRepairOperation", `{"repairType":"blocks"}`, "InvalidRequest", "no block store")
	tr.mustFail("POST", "LaunchRepairOperation", `{"repairType":{"scrub":"start"}}`, "InvalidRequest", "no block store")
	var ws ListWorkersResponse
	tr.mustCall("POST", "ListWorkers", selfQ, "", &ws)
	if len(ws.Error) != 0 || len(ws.Success) != 1 {
		t.Errorf("workers without a store: %+v", ws)
	}
	for _, w := range ws.Success {
		if len(w) != 0 {
			t.Errorf("workers without a store or tables: %+v", w)
		}
	}
	var stats GetNodeStatisticsResponse
	tr.mustCall("GET", "GetNodeStatistics", selfQ, "", &stats)
	for _, st := range stats.Success {
		if st.Blocks != nil || !strings.Contains(st.Freeform, "v-test") {
			t.Errorf("statistics without a store: %+v", st)
		}
	}
}

func TestRepairTypeJSON(t *testing.T) {
	for _, tt := range []struct {
		v    RepairType
		json string
	}{
		{RepairType{Name: RepairTables}, `"tables"`},
		{RepairType{Name: RepairBlocks}, `"blocks"`},
		{RepairType{Name: RepairScrub, Scrub: blocks.ScrubStart}, `{"scrub":"start"}`},
		{RepairType{Name: RepairScrub, Scrub: blocks.ScrubCancel}, `{"scrub":"cancel"}`},
	} {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%+v) = %s, %v, want %s", tt.v, b, err, tt.json)
		}
		var got RepairType
		if err := json.Unmarshal([]byte(tt.json), &got); err != nil || got != tt.v {
			t.Errorf("Unmarshal(%s) = %+v, %v, want %+v", tt.json, got, err, tt.v)
		}
	}
	for _, in := range []string{`"scrub"`, `{"scrub":1}`, `{}`, `{"blocks":"x"}`, `3`, `null`} {
		var r RepairType
		if err := json.Unmarshal([]byte(in), &r); err == nil && in != `null` {
			t.Errorf("Unmarshal(%s) accepted: %+v", in, r)
		}
	}
}
