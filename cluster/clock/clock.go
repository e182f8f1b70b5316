// Package clock is the one wall clock of a node, with an offset for tests.
//
// Every timestamp a node stores or compares with other nodes (item
// versions, catalog registers, layout staging stamps, peer liveness, SigV4
// request dates) comes from the func() time.Time that cmd/grange builds
// here and hands to cmd/grange/node as node.Config.Now.
//
// The offset (GRANGE_CLOCK_OFFSET) is a testing knob: it lets several
// nodes on one machine disagree about the time, to exercise what the code
// promises under clock skew. It is never meant for production: a node
// with an offset stamps its data in the future or the past, and it checks
// the dates of SigV4 requests against its own shifted clock, so it
// rejects clients whose clock differs from it by more than 15 minutes.
//
// This package imports only the standard library and reads no
// environment itself: FromEnv takes the lookup function.
package clock

import (
	"fmt"
	"strings"
	"time"
)

// EnvOffset is the environment variable FromEnv reads.
const EnvOffset = "GRANGE_CLOCK_OFFSET"

// System returns the system's wall clock, time.Now.
func System() func() time.Time { return time.Now }

// WithOffset returns a clock d ahead of the system's (behind when d is
// negative); System when d is 0. The times it returns keep their
// monotonic reading, shifted by d, so durations measured between two of
// them are as exact as with time.Now.
func WithOffset(d time.Duration) func() time.Time {
	if d == 0 {
		return System()
	}
	return func() time.Time { return time.Now().Add(d) }
}

// ParseOffset parses a signed Go duration: "-90s", "+2h", "1h30m", "0".
// The empty string is 0.
func ParseOffset(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a signed duration such as -90s or +2h", s)
	}
	return d, nil
}

// FromEnv returns the clock EnvOffset asks for and its offset: System and
// 0 when the variable is unset or empty. lookup is os.LookupEnv outside
// tests. An invalid value is an error that names the variable.
func FromEnv(lookup func(string) (string, bool)) (func() time.Time, time.Duration, error) {
	v, ok := lookup(EnvOffset)
	if !ok {
		return System(), 0, nil
	}
	d, err := ParseOffset(v)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", EnvOffset, err)
	}
	return WithOffset(d), d, nil
}
