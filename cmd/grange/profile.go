package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
)

// envCPUProfile names the debugging knob that writes a CPU profile of a
// `grange server` or `grange bench` process, from its start until it stops
// (for a server: until its shutdown completes). "%p" in the path is
// replaced by the process id and "%c" by the command ("server", "bench"),
// so that one value serves every process of a local cluster: the servers
// that `grange bench k2v-cluster` starts inherit its environment. For
// example:
//
//	GRANGE_CPU_PROFILE=/tmp/prof/%c-%p.pprof grange bench k2v-cluster
//	go tool pprof -top grange /tmp/prof/server-1234.pprof
//
// A profile that cannot be started is reported on stderr and skipped.
const envCPUProfile = "GRANGE_CPU_PROFILE"

// startCPUProfile starts the CPU profile that GRANGE_CPU_PROFILE asks for,
// if any, and returns the function that stops it and closes its file.
func startCPUProfile(command string) (stop func()) {
	path := os.Getenv(envCPUProfile)
	if path == "" {
		return func() {}
	}
	path = strings.NewReplacer("%p", strconv.Itoa(os.Getpid()), "%c", command).Replace(path)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", envCPUProfile, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", envCPUProfile, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
