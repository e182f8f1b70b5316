package nodetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// OpKind is the kind of a recorded K2V operation.
type OpKind uint8

const (
	// Read is ReadItem: it returns the item's values and token.
	Read OpKind = iota
	// Write is InsertItem of Op.Value, with the token of read FromRead or
	// without a token (FromRead < 0).
	Write
	// Delete is DeleteItem, with the token of read FromRead or without.
	Delete
)

func (k OpKind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one client operation on one item: what was asked, what came back,
// and when (since the history began). Values written are unique in a
// history, so that a read tells which writes it saw; a delete's tombstone
// is named by the delete's ID (TombstoneOf).
type Op struct {
	ID     int
	Worker int
	Node   int // index of the node whose API served it
	Kind   OpKind
	Key    string // the item's sort key (the partition key is the workload's)
	// Value is the value a Write wrote.
	Value string
	// FromRead is the ID of the read whose causality token a Write or
	// Delete carried; -1 for none.
	FromRead int
	// Token is the token a Read returned or a Write/Delete sent.
	Token string
	// Values are the non-tombstone values a Read returned, sorted; an item
	// never written reads as none.
	Values []string
	// Tombstone is set when a Read returned a tombstone among its values.
	Tombstone bool
	// Err is set when the operation failed: a failed Write or Delete may
	// or may not have taken effect, a failed Read tells nothing.
	Err error

	Call, Return time.Duration
}

// Done reports whether the operation completed with a known outcome.
func (o *Op) Done() bool { return o.Err == nil }

func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d w%d n%d %s %s", o.ID, o.Worker, o.Node, o.Kind, o.Key)
	switch o.Kind {
	case Read:
		fmt.Fprintf(&b, " -> %v", o.Values)
		if o.Tombstone {
			b.WriteString("+tombstone")
		}
	case Write:
		fmt.Fprintf(&b, " %q", o.Value)
	}
	if o.Kind != Read {
		if o.FromRead >= 0 {
			fmt.Fprintf(&b, " ctx=#%d", o.FromRead)
		} else {
			b.WriteString(" no-ctx")
		}
	}
	if o.Err != nil {
		fmt.Fprintf(&b, " err=%v", o.Err)
	}
	fmt.Fprintf(&b, " [%v,%v]", o.Call, o.Return)
	return b.String()
}

// TombstoneOf names the tombstone written by delete op id in model states.
func TombstoneOf(id int) string { return fmt.Sprintf("\x00tombstone#%d", id) }

func isTombstone(v string) bool { return strings.HasPrefix(v, "\x00tombstone#") }

// History records operations from concurrent workers. It is safe for
// concurrent use.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []*Op
}

// NewHistory starts an empty history; times are measured from now.
func NewHistory() *History { return &History{start: time.Now()} }

// Begin records the invocation of op (its ID and Call are set) and
// returns the recorded copy, to be completed with End.
func (h *History) Begin(op Op) *Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &op
	p.ID = len(h.ops)
	p.Call = time.Since(h.start)
	h.ops = append(h.ops, p)
	return p
}

// End records the return of op with its outcome; a Read's Values are
// sorted.
func (h *History) End(op *Op, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.Return = time.Since(h.start)
	op.Err = err
	slices.Sort(op.Values)
}

// Ops returns a copy of the recorded operations, in invocation order.
// Call it once the workers are done.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, len(h.ops))
	for i, p := range h.ops {
		out[i] = *p
	}
	return out
}
