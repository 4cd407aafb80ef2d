package upstream

import (
	"testing"
	"time"
)

// fakeClock is a settable clock for budgets.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBudget(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b := NewBudget(0.2, 1, 10*time.Second, clk.now)
	allow := func(want bool, why string) {
		t.Helper()
		if got := b.Allow(); got != want {
			t.Fatalf("%s: Allow() = %v, want %v", why, got, want)
		}
	}
	allow(true, "the floor allows one event with no traffic")
	allow(false, "the floor is spent")
	for range 10 {
		b.Request()
	}
	// 1 + 0.2*10 = 3 events in the window; one was taken.
	allow(true, "second of three")
	allow(true, "third of three")
	allow(false, "20% of 10 requests plus 1 are spent")

	clk.advance(5 * time.Second)
	allow(false, "half a window later the events still count")
	clk.advance(5*time.Second + time.Millisecond)
	allow(true, "a whole window later the old buckets are gone")
	clk.advance(time.Hour)
	for range 100 {
		b.Request()
	}
	for range 21 {
		allow(true, "21 of 1 + 0.2*100")
	}
	allow(false, "the 22nd is over budget")
}

func TestBulkhead(t *testing.T) {
	h := NewBulkhead(2)
	if !h.Acquire() || !h.Acquire() {
		t.Fatal("two slots expected")
	}
	if h.Acquire() {
		t.Fatal("third acquire succeeded on a bulkhead of 2")
	}
	h.Release()
	if !h.Acquire() {
		t.Fatal("a released slot was not reusable")
	}
	if h.InFlight() != 2 {
		t.Fatalf("InFlight = %d, want 2", h.InFlight())
	}
	var none *Bulkhead
	if !none.Acquire() {
		t.Fatal("a nil bulkhead must not limit")
	}
	none.Release()
}
