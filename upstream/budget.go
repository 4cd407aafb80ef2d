package upstream

import (
	"sync"
	"time"
)

// Budget bounds a share of events (retries, fallbacks) against a count of
// requests over a rolling window of ten buckets: an event is allowed while
// events < min + ratio*requests in the window. It is how Linkerd and
// Envoy bound retries: proportional to traffic, with a floor for quiet
// services.
type Budget struct {
	ratio  float64
	min    int64
	bucket time.Duration
	now    func() time.Time

	mu     sync.Mutex
	start  int64 // index of the newest bucket
	reqs   [10]int64
	events [10]int64
}

// NewBudget allows events up to min + ratio*requests over window; now is
// the clock (nil: time.Now).
func NewBudget(ratio float64, min int, window time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{ratio: ratio, min: int64(min), bucket: max(window/10, time.Millisecond), now: now}
}

// advance rotates the buckets to the current time; b.mu is held.
func (b *Budget) advance() int {
	idx := b.now().UnixNano() / int64(b.bucket)
	if gap := idx - b.start; gap > 0 {
		for i := int64(1); i <= min(gap, 10); i++ {
			k := (b.start + i) % 10
			b.reqs[k], b.events[k] = 0, 0
		}
		b.start = idx
	}
	return int(b.start % 10)
}

// Request counts one request.
func (b *Budget) Request() {
	b.mu.Lock()
	b.reqs[b.advance()]++
	b.mu.Unlock()
}

// Allow takes one event from the budget, or reports that it is spent.
func (b *Budget) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.advance()
	var reqs, events int64
	for i := range b.reqs {
		reqs += b.reqs[i]
		events += b.events[i]
	}
	if float64(events) >= float64(b.min)+b.ratio*float64(reqs) {
		return false
	}
	b.events[k]++
	return true
}
