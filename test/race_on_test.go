//go:build race

package test

// raceEnabled: the race detector is on. sync.Pool then drops a quarter of
// what is put back (by design, to find misuse), so allocation counts vary
// from request to request.
const raceEnabled = true
