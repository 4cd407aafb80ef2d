//go:build race

package test

// raceEnabled: the race detector is on. sync.Pool then drops a quarter of
// what is put back (by design, to find misuse) and instrumentation
// allocates, so allocation counts vary from request to request and mean
// nothing.
const raceEnabled = true
