package admin

import "time"

// SetClock replaces the clock the overrides judge expiry by (tests).
func (o *Overrides) SetClock(now func() time.Time) { o.now = now }
