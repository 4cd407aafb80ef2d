package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strangler/strangler/routing"
)

// State is on-call's runtime state: what the overrides are, at which
// revision. Every stored change increments Revision by one; a replica
// never applies a state older than the one it serves (see Newer).
type State struct {
	// Revision counts the changes since the store's history began.
	Revision int64 `json:"revision"`
	// Epoch names that history: a Redis store that lost its data is
	// re-seeded under a new epoch (empty for the file store).
	Epoch string `json:"epoch,omitempty"`
	// Seeded marks a state written by a re-seed and not changed since:
	// a replica that holds a newer one may still replace it.
	Seeded    bool               `json:"seeded,omitempty"`
	Overrides []routing.Override `json:"overrides"`
	Breakers  []BreakerOverride  `json:"breakers,omitempty"`
}

// BreakerOverride is on-call's forced state of an upstream's breaker.
type BreakerOverride struct {
	Upstream string    `json:"upstream"`
	State    string    `json:"state"` // "open" or "closed"
	Reason   string    `json:"reason"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Expires  time.Time `json:"expires,omitzero"`
}

// Expired reports whether the override's TTL has passed at now.
func (b *BreakerOverride) Expired(now time.Time) bool {
	return !b.Expires.IsZero() && !now.Before(b.Expires)
}

// Describe is the override in a few words: "forced-open until ...", or
// "auto" for none (the breaker's own logic decides).
func (b *BreakerOverride) Describe() string {
	if b == nil {
		return "auto"
	}
	s := "forced-" + b.State
	if !b.Expires.IsZero() {
		s += " until " + b.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// Clone returns a deep copy.
func (s State) Clone() State {
	c := s
	c.Overrides = slices.Clone(s.Overrides)
	for i := range c.Overrides {
		if p := c.Overrides[i].Percent; p != nil {
			v := *p
			c.Overrides[i].Percent = &v
		}
	}
	c.Breakers = slices.Clone(s.Breakers)
	return c
}

// Override returns the route's override, or nil.
func (s *State) Override(route string) *routing.Override {
	for i := range s.Overrides {
		if s.Overrides[i].Route == route {
			return &s.Overrides[i]
		}
	}
	return nil
}

// SetOverride adds or replaces the route's override.
func (s *State) SetOverride(ov routing.Override) {
	s.DeleteOverride(ov.Route)
	s.Overrides = append(s.Overrides, ov)
	slices.SortFunc(s.Overrides, func(a, b routing.Override) int { return strings.Compare(a.Route, b.Route) })
}

// DeleteOverride removes the route's override.
func (s *State) DeleteOverride(route string) {
	s.Overrides = slices.DeleteFunc(s.Overrides, func(o routing.Override) bool { return o.Route == route })
}

// Breaker returns the upstream's forced breaker, or nil.
func (s *State) Breaker(upstream string) *BreakerOverride {
	for i := range s.Breakers {
		if s.Breakers[i].Upstream == upstream {
			return &s.Breakers[i]
		}
	}
	return nil
}

// SetBreaker adds or replaces the upstream's forced breaker.
func (s *State) SetBreaker(b BreakerOverride) {
	s.DeleteBreaker(b.Upstream)
	s.Breakers = append(s.Breakers, b)
	slices.SortFunc(s.Breakers, func(a, b BreakerOverride) int { return strings.Compare(a.Upstream, b.Upstream) })
}

// DeleteBreaker removes the upstream's forced breaker.
func (s *State) DeleteBreaker(upstream string) {
	s.Breakers = slices.DeleteFunc(s.Breakers, func(b BreakerOverride) bool { return b.Upstream == upstream })
}

// Empty reports whether the state overrides nothing.
func (s *State) Empty() bool { return len(s.Overrides) == 0 && len(s.Breakers) == 0 }

// Newer reports whether a replica serving cur should apply s: a later
// revision of the same history, or a different history (the store was
// re-seeded and has moved on).
func (s *State) Newer(cur State) bool {
	if s.Epoch != cur.Epoch {
		return true
	}
	return s.Revision > cur.Revision
}

// Event is one entry of the audit trail: who changed what, why, from what
// to what, through which replica, at which revision.
type Event struct {
	// ID is the store's id of the event (a Redis stream id, or a sequence
	// number in the file store); empty before it is stored.
	ID     string    `json:"id,omitempty"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // side, canary, unflip, breaker, expire, reload, reseed, init
	// By is the admin token's name, or "ttl" and "store" for what the
	// gateway did by itself.
	By       string `json:"by"`
	Replica  string `json:"replica,omitempty"`
	Route    string `json:"route,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Previous string `json:"previous,omitempty"`
	New      string `json:"new,omitempty"`
	Result   string `json:"result,omitempty"`
	// Revision is the state revision the change produced (0: no change of
	// state, a reload).
	Revision int64 `json:"revision,omitempty"`
	// Persisted is false for a change a single replica's store could not
	// keep when it was made (it applied in memory and was retried).
	Persisted *bool `json:"persisted,omitempty"`
}

// Query selects audit events: newest first, at most Limit (default 100,
// at most 1000), only those matching the non-empty fields, older than
// Before (an event id) when set.
type Query struct {
	Limit    int
	Route    string
	Upstream string
	Action   string
	Before   string
}

func (q Query) limit() int {
	switch {
	case q.Limit <= 0:
		return 100
	case q.Limit > 1000:
		return 1000
	}
	return q.Limit
}

func (q Query) match(e *Event) bool {
	return (q.Route == "" || e.Route == q.Route) && (q.Upstream == "" || e.Upstream == q.Upstream) &&
		(q.Action == "" || e.Action == q.Action)
}

// Log is an event as slog attributes, for the gateway's own log.
func (e *Event) Log() []any {
	out := []any{"action", e.Action, "by", e.By}
	add := func(k, v string) {
		if v != "" {
			out = append(out, k, v)
		}
	}
	add("route", e.Route)
	add("upstream", e.Upstream)
	add("reason", e.Reason)
	add("previous", e.Previous)
	add("new", e.New)
	add("result", e.Result)
	add("replica", e.Replica)
	if e.Revision > 0 {
		out = append(out, "revision", e.Revision)
	}
	if e.Persisted != nil {
		out = append(out, "persisted", *e.Persisted)
	}
	return out
}

func decodeState(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("decoding state: %w", err)
	}
	return s, nil
}
