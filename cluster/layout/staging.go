package layout

import (
	"errors"
	"fmt"
)

// ErrNoChanges is returned by Apply and Preview when no staged change
// differs from the current version, and by Revert when nothing is staged.
var ErrNoChanges = errors.New("layout: no staged changes")

// Parameters are the settings of the assignment an operator chooses.
type Parameters struct {
	// ZoneRedundancy is the minimum number of distinct zones every
	// partition is stored in, at most the replication factor; 0 means as
	// many as possible: min(replication factor, zones with storage nodes).
	ZoneRedundancy int
}

// StagedRole is a role change waiting for the next Apply.
type StagedRole struct {
	Role  *Role  // nil: remove the node from the layout
	Stamp uint64 // last-writer-wins timestamp
}

// Staging holds the changes waiting for the next Apply. It is a CRDT
// (Garage's Lww<LayoutStaging>): the staging with the higher Stamp wins
// whole, which is how Apply and Revert clear it everywhere — they install
// a newer, empty staging. Stagings of equal Stamp merge: each node's role
// by its own Stamp, the parameters by ParamStamp.
type Staging struct {
	Stamp uint64
	Roles map[NodeID]StagedRole
	// Parameters are staged when ParamStamp is not 0.
	Parameters Parameters
	ParamStamp uint64
}

func (s Staging) clone() Staging {
	c := s
	c.Roles = make(map[NodeID]StagedRole, len(s.Roles))
	for id, sr := range s.Roles {
		if sr.Role != nil {
			r := sr.Role.clone()
			sr.Role = &r
		}
		c.Roles[id] = sr
	}
	return c
}

func (s Staging) empty() bool { return len(s.Roles) == 0 && s.ParamStamp == 0 }

// merge joins o into s and reports whether s changed.
func (s *Staging) merge(o *Staging) bool {
	switch {
	case o.Stamp > s.Stamp:
		*s = o.clone()
		return true
	case o.Stamp < s.Stamp:
		return false
	}
	changed := false
	if s.Roles == nil {
		s.Roles = map[NodeID]StagedRole{}
	}
	for id, b := range o.Roles {
		a, ok := s.Roles[id]
		if ok && !stagedRoleLess(a, b) {
			continue
		}
		if b.Role != nil {
			r := b.Role.clone()
			b.Role = &r
		}
		s.Roles[id] = b
		changed = true
	}
	if o.ParamStamp > s.ParamStamp || o.ParamStamp == s.ParamStamp && o.Parameters.ZoneRedundancy > s.Parameters.ZoneRedundancy {
		s.Parameters, s.ParamStamp = o.Parameters, o.ParamStamp
		changed = true
	}
	return changed
}

// stagedRoleLess orders staged roles by stamp, then removal before any
// role, then by role: the last-writer-wins order, with a deterministic
// winner between concurrent changes stamped alike.
func stagedRoleLess(a, b StagedRole) bool {
	if a.Stamp != b.Stamp {
		return a.Stamp < b.Stamp
	}
	switch {
	case b.Role == nil:
		return false
	case a.Role == nil:
		return true
	}
	return compareRoles(*a.Role, *b.Role) < 0
}

func validateRole(r *Role) error {
	if r.Zone == "" {
		return fmt.Errorf("%w: a role needs a zone", ErrInvalid)
	}
	for _, t := range r.Tags {
		if t == "" {
			return fmt.Errorf("%w: empty tag", ErrInvalid)
		}
	}
	return nil
}

// StageRole stages a role for node id for the next Apply; a nil r stages
// its removal. It replaces any role staged for id. now is the caller's
// clock (milliseconds, say); the change is stamped with it, or just above
// the previous change of id if that is later, so the last call wins.
func (h *History) StageRole(id NodeID, r *Role, now uint64) error {
	if id.IsZero() {
		return fmt.Errorf("%w: zero node id", ErrInvalid)
	}
	sr := StagedRole{Stamp: max(now, h.Staging.Roles[id].Stamp+1)}
	if r != nil {
		if err := validateRole(r); err != nil {
			return err
		}
		c := r.clone()
		sr.Role = &c
	}
	if h.Staging.Roles == nil {
		h.Staging.Roles = map[NodeID]StagedRole{}
	}
	h.Staging.Roles[id] = sr
	return nil
}

// StageParameters stages parameters for the next Apply, stamped like
// StageRole. The zone redundancy must be between 0 (maximum) and the
// replication factor.
func (h *History) StageParameters(p Parameters, now uint64) error {
	if rf := h.Current().ReplicationFactor; p.ZoneRedundancy < 0 || p.ZoneRedundancy > rf {
		return fmt.Errorf("%w: zone redundancy %d is not between 0 (maximum) and the replication factor %d", ErrInvalid, p.ZoneRedundancy, rf)
	}
	h.Staging.Parameters = p
	h.Staging.ParamStamp = max(now, h.Staging.ParamStamp+1)
	return nil
}

// HasStagedChanges reports whether applying the staging would change
// anything: a staged role differing from the current one (removing a node
// without a role changes nothing), or staged parameters differing from the
// current ones. As in Garage, parameters alone are a change.
func (h *History) HasStagedChanges() bool {
	cur := h.Current()
	for id, sr := range h.Staging.Roles {
		r, ok := cur.Roles[id]
		if sr.Role == nil && ok || sr.Role != nil && (!ok || !sr.Role.equal(r)) {
			return true
		}
	}
	return h.Staging.ParamStamp != 0 && h.Staging.Parameters != cur.Parameters
}

// Revert clears the staging, in a way that wins over the staged changes
// wherever the history is merged. It returns ErrNoChanges when nothing is
// staged.
func (h *History) Revert(now uint64) error {
	if h.Staging.empty() {
		return ErrNoChanges
	}
	h.clearStaging(now)
	return nil
}

func (h *History) clearStaging(now uint64) {
	h.Staging = Staging{Stamp: max(now, h.Staging.Stamp+1), Roles: map[NodeID]StagedRole{}}
}
