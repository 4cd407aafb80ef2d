package upstream

import "sync/atomic"

// Bulkhead caps concurrent requests; beyond it they are shed at once
// rather than queued. A nil Bulkhead does not limit.
type Bulkhead struct {
	limit int64
	n     atomic.Int64
}

// NewBulkhead returns a bulkhead of limit slots.
func NewBulkhead(limit int) *Bulkhead { return &Bulkhead{limit: int64(limit)} }

// Acquire takes a slot, or reports that none is free.
func (h *Bulkhead) Acquire() bool {
	if h == nil {
		return true
	}
	if h.n.Add(1) > h.limit {
		h.n.Add(-1)
		return false
	}
	return true
}

// Release returns a slot.
func (h *Bulkhead) Release() {
	if h != nil {
		h.n.Add(-1)
	}
}

// InFlight is the number of requests holding the bulkhead.
func (h *Bulkhead) InFlight() int64 {
	if h == nil {
		return 0
	}
	return h.n.Load()
}

// Limit is the number of slots.
func (h *Bulkhead) Limit() int64 {
	if h == nil {
		return 0
	}
	return h.limit
}
