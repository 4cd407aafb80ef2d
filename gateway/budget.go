package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// budget bounds a share of events (retries, fallbacks) against a count of
// requests over a rolling window of ten buckets: an event is allowed while
// events < min + ratio*requests in the window. It is how Linkerd and
// Envoy bound retries: proportional to traffic, with a floor for quiet
// services.
type budget struct {
	ratio  float64
	min    int64
	bucket time.Duration
	now    func() time.Time

	mu     sync.Mutex
	start  int64 // index of the newest bucket
	reqs   [10]int64
	events [10]int64
}

func newBudget(ratio float64, min int, window time.Duration, now func() time.Time) *budget {
	if now == nil {
		now = time.Now
	}
	return &budget{ratio: ratio, min: int64(min), bucket: max(window/10, time.Millisecond), now: now}
}

// advance rotates the buckets to the current time; b.mu is held.
func (b *budget) advance() int {
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
func (b *budget) Request() {
	b.mu.Lock()
	b.reqs[b.advance()]++
	b.mu.Unlock()
}

// Allow takes one event from the budget, or reports that it is spent.
func (b *budget) Allow() bool {
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

// bulkhead caps concurrent requests; beyond it they are shed at once
// rather than queued.
type bulkhead struct {
	limit int64
	n     atomic.Int64
}

func (h *bulkhead) acquire() bool {
	if h == nil {
		return true
	}
	if h.n.Add(1) > h.limit {
		h.n.Add(-1)
		return false
	}
	return true
}

func (h *bulkhead) release() {
	if h != nil {
		h.n.Add(-1)
	}
}

// InFlight is the number of requests holding the bulkhead.
func (h *bulkhead) InFlight() int64 { return h.n.Load() }
