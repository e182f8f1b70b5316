//go:build race

package nodetest

// raceEnabled is set when the race detector runs, which makes everything
// several times slower: the slow tests then use smaller data sets.
const raceEnabled = true
