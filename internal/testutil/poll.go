// Package testutil holds what several test packages share.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds or within
// passes; then it fails the test with msg(), which describes the
// condition's last state. Tests wait for effects that land a moment after
// a response (counters moved when a streamed body completes, a shadow
// worker's result) with it, never with a fixed sleep.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatal(msg())
	}
}

// Poll is Eventually without a test: it reports whether cond held within
// the time allowed.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
