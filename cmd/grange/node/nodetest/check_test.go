package nodetest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// hist builds a history from ops given in ID order with times in ms.
type hist []Op

func (h *hist) add(kind OpKind, worker int, key string, call, ret int, f func(*Op)) int {
	op := Op{ID: len(*h), Worker: worker, Kind: kind, Key: key, FromRead: -1, Call: time.Duration(call) * time.Millisecond, Return: time.Duration(ret) * time.Millisecond}
	if f != nil {
		f(&op)
	}
	*h = append(*h, op)
	return op.ID
}

func write(v string, from int) func(*Op) {
	return func(o *Op) { o.Value, o.FromRead = v, from }
}

func reads(vals ...string) func(*Op) {
	return func(o *Op) {
		for _, v := range vals {
			if v == "null" {
				o.Tombstone = true
			} else {
				o.Values = append(o.Values, v)
			}
		}
	}
}

func failed(f func(*Op)) func(*Op) {
	return func(o *Op) {
		if f != nil {
			f(o)
		}
		o.Err = errors.New("timeout")
	}
}

func TestCheckLinearizable(t *testing.T) {
	tests := []struct {
		name  string
		build func(h *hist)
		final Final
		// wantLin and wantLost: "" means the check passes, else a
		// substring of its error.
		wantLin, wantLost string
	}{{
		name: "correct: tokens supersede, blind writes accumulate",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 10, write("x", -1))
			r := h.add(Read, 1, "a", 20, 30, reads("x"))
			h.add(Write, 2, "a", 25, 35, write("y", -1)) // concurrent with r
			h.add(Write, 1, "a", 40, 50, write("z", r))  // supersedes x, not y
			h.add(Read, 0, "a", 60, 70, reads("y", "z"))
			h.add(Read, 0, "b", 60, 70, reads())
		},
		final: Final{"a": {"y", "z"}},
	}, {
		name: "correct: concurrent read may or may not see a write",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 100, write("x", -1))
			h.add(Read, 1, "a", 10, 20, reads())
			h.add(Read, 2, "a", 30, 40, reads("x"))
			h.add(Read, 1, "a", 50, 60, reads("x"))
		},
		final: Final{"a": {"x"}},
	}, {
		name: "correct: delete with token leaves a tombstone",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 10, write("x", -1))
			r := h.add(Read, 0, "a", 20, 30, reads("x"))
			h.add(Delete, 0, "a", 40, 50, func(o *Op) { o.FromRead = r })
			h.add(Read, 1, "a", 60, 70, reads("null"))
			h.add(Write, 1, "a", 80, 90, write("y", -1))
			h.add(Read, 1, "a", 100, 110, reads("y", "null"))
		},
		final: Final{"a": {"y"}},
	}, {
		name: "correct: a failed write may take effect late",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 10, failed(write("x", -1)))
			h.add(Read, 1, "a", 20, 30, reads())
			h.add(Read, 1, "a", 40, 50, reads("x"))
		},
		final: Final{"a": {"x"}},
	}, {
		name: "lost write",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 10, write("x", -1))
			h.add(Write, 1, "a", 20, 30, write("y", -1))
			h.add(Read, 0, "a", 40, 50, reads("y"))
		},
		final:    Final{"a": {"y"}},
		wantLin:  "not linearizable",
		wantLost: `acknowledged write lost`,
	}, {
		name: "correct: a read overlapping two blind writes sees the later only",
		build: func(h *hist) {
			h.add(Read, 0, "a", 0, 50, reads("y")) // reads its replicas at different instants
			h.add(Write, 1, "a", 10, 20, write("x", -1))
			h.add(Write, 1, "a", 30, 40, write("y", -1))
			h.add(Read, 2, "a", 60, 70, reads("x", "y"))
		},
		final: Final{"a": {"x", "y"}},
	}, {
		name: "a read after another read saw a value must see it too",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 100, write("x", -1))
			h.add(Read, 1, "a", 10, 20, reads("x"))
			h.add(Read, 2, "a", 30, 40, reads()) // the write is in flight, but a read already returned x
		},
		final:   Final{"a": {"x"}},
		wantLin: "not linearizable",
	}, {
		name: "missed value whose write completed before the read began",
		build: func(h *hist) {
			h.add(Write, 1, "a", 10, 20, write("x", -1))
			h.add(Write, 1, "a", 30, 40, write("y", -1))
			h.add(Read, 0, "a", 45, 50, reads("y"))
		},
		final:   Final{"a": {"x", "y"}},
		wantLin: "not linearizable",
	}, {
		name: "stale read after a completed write",
		build: func(h *hist) {
			r := h.add(Read, 0, "a", 0, 5, reads())
			h.add(Write, 0, "a", 10, 20, write("x", r))
			r2 := h.add(Read, 1, "a", 30, 40, reads("x"))
			h.add(Write, 1, "a", 50, 60, write("y", r2))
			h.add(Read, 2, "a", 70, 80, reads("x")) // y replaced x before
		},
		final:   Final{"a": {"y"}},
		wantLin: "not linearizable",
	}, {
		name: "resurrected superseded value",
		build: func(h *hist) {
			h.add(Write, 0, "a", 0, 10, write("x", -1))
			r := h.add(Read, 0, "a", 20, 30, reads("x"))
			h.add(Write, 0, "a", 40, 50, write("y", r))
			h.add(Read, 1, "a", 60, 70, reads("y"))
			h.add(Read, 1, "a", 80, 90, reads("x", "y"))
		},
		final:    Final{"a": {"x", "y"}},
		wantLin:  "not linearizable",
		wantLost: `"x" is back after write #2`,
	}, {
		name: "value never written",
		build: func(h *hist) {
			h.add(Read, 0, "a", 0, 10, reads("ghost"))
		},
		final:    Final{"a": {"ghost"}},
		wantLin:  "not linearizable",
		wantLost: "never written",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hist
			tt.build(&h)
			check := func(what string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s = %v, want nil", what, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s = %v, want an error containing %q", what, err, want)
				}
			}
			check("CheckLinearizable", CheckLinearizable(h, 10*time.Second), tt.wantLin)
			check("CheckNoLostWrites", CheckNoLostWrites(h, tt.final), tt.wantLost)
		})
	}
}
