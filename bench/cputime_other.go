//go:build !unix

package bench

import "time"

// cpuTime is unknown (0) on this system.
func cpuTime() time.Duration { return 0 }
