package upstream

import (
	"sync"
	"sync/atomic"
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

	// reqs are counted without a lock (Request runs on every request):
	// each bucket is one word, the bucket's index (low 32 bits) above
	// its count, so a bucket from an older window reads as empty and the
	// first request of a new one restarts it.
	reqs [10]atomic.Uint64
	// Events are rare (a retry, a fallback): Allow checks and takes one
	// under mu, in buckets tagged the same way.
	mu     sync.Mutex
	events [10]uint64
}

// NewBudget allows events up to min + ratio*requests over window; now is
// the clock (nil: time.Now).
func NewBudget(ratio float64, min int, window time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{ratio: ratio, min: int64(min), bucket: max(window/10, time.Millisecond), now: now}
}

// index is the current bucket's index.
func (b *Budget) index() int64 { return b.now().UnixNano() / int64(b.bucket) }

func tagOf(idx int64) uint64 { return uint64(uint32(idx)) << 32 }

// inWindow returns a bucket word's count when the bucket is one of the
// window's ten (ending at idx), else 0.
func inWindow(w uint64, idx int64) int64 {
	if uint32(idx)-uint32(w>>32) >= 10 {
		return 0
	}
	return int64(w & 0xffffffff)
}

// bump adds one to a bucket word for idx.
func bump(w uint64, idx int64) uint64 {
	if w&^0xffffffff == tagOf(idx) {
		return w + 1
	}
	return tagOf(idx) | 1
}

// Request counts one request.
func (b *Budget) Request() { b.RequestAt(b.now()) }

// RequestAt counts one request made at t (a time the caller already has:
// reading the clock is not free on every request).
func (b *Budget) RequestAt(t time.Time) {
	idx := t.UnixNano() / int64(b.bucket)
	s := &b.reqs[idx%10]
	for {
		w := s.Load()
		if s.CompareAndSwap(w, bump(w, idx)) {
			return
		}
	}
}

// Allow takes one event from the budget, or reports that it is spent.
func (b *Budget) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx := b.index()
	var reqs, events int64
	for i := range b.reqs {
		reqs += inWindow(b.reqs[i].Load(), idx)
		events += inWindow(b.events[i], idx)
	}
	if float64(events) >= float64(b.min)+b.ratio*float64(reqs) {
		return false
	}
	b.events[idx%10] = bump(b.events[idx%10], idx)
	return true
}
