//go:build race

package sigv4

// raceEnabled skips allocation checks: the race detector makes sync.Pool
// drop items at random.
const raceEnabled = true
