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
	// Plans are the migration plans' positions (package migration).
	Plans []PlanState `json:"plans,omitempty"`
}

// PlanState is where a route's migration plan stands: the stage it put
// the route in, the stages whose gates held, and whether it is paused.
// It changes with the plan's override in one revision.
type PlanState struct {
	Route string `json:"route"`
	// Stage is the stage's name ("canary 25%"), Since when it began.
	Stage string    `json:"stage"`
	Since time.Time `json:"since"`
	// Held lists the stages whose gates held (the plan was promoted from
	// them): a rollback goes to the last one below the current stage.
	Held []string `json:"held,omitempty"`
	// Paused stops the plan: by whom, why, since when.
	Paused      bool      `json:"paused,omitempty"`
	PausedBy    string    `json:"paused_by,omitempty"`
	PauseReason string    `json:"pause_reason,omitempty"`
	PausedAt    time.Time `json:"paused_at,omitzero"`
	// Token is the fencing token of the lease under which the plan last
	// acted by itself: a decision under an older token is refused.
	Token int64 `json:"token,omitempty"`
}

// Plan returns the route's plan state, or nil.
func (s *State) Plan(route string) *PlanState { return find(s.Plans, planKey, route) }

// SetPlan adds or replaces the route's plan state.
func (s *State) SetPlan(p PlanState) { s.Plans = put(s.Plans, planKey, p) }

// DeletePlan removes the route's plan state.
func (s *State) DeletePlan(route string) { s.Plans = drop(s.Plans, planKey, route) }

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
	c.Plans = slices.Clone(s.Plans)
	for i := range c.Plans {
		c.Plans[i].Held = slices.Clone(c.Plans[i].Held)
	}
	return c
}

// Override returns the route's override, or nil.
func (s *State) Override(route string) *routing.Override {
	return find(s.Overrides, overrideKey, route)
}

// SetOverride adds or replaces the route's override.
func (s *State) SetOverride(ov routing.Override) { s.Overrides = put(s.Overrides, overrideKey, ov) }

// DeleteOverride removes the route's override.
func (s *State) DeleteOverride(route string) { s.Overrides = drop(s.Overrides, overrideKey, route) }

// Breaker returns the upstream's forced breaker, or nil.
func (s *State) Breaker(upstream string) *BreakerOverride {
	return find(s.Breakers, breakerKey, upstream)
}

// SetBreaker adds or replaces the upstream's forced breaker.
func (s *State) SetBreaker(b BreakerOverride) { s.Breakers = put(s.Breakers, breakerKey, b) }

// DeleteBreaker removes the upstream's forced breaker.
func (s *State) DeleteBreaker(upstream string) { s.Breakers = drop(s.Breakers, breakerKey, upstream) }

// The state's lists (overrides, forced breakers, plans) are kept sorted
// by their key, one entry per key.
func overrideKey(o routing.Override) string { return o.Route }
func breakerKey(b BreakerOverride) string   { return b.Upstream }
func planKey(p PlanState) string            { return p.Route }

// find returns the entry of l with key k, or nil.
func find[T any](l []T, key func(T) string, k string) *T {
	for i := range l {
		if key(l[i]) == k {
			return &l[i]
		}
	}
	return nil
}

// put adds v to l or replaces the entry with its key, keeping l sorted.
func put[T any](l []T, key func(T) string, v T) []T {
	l = append(drop(l, key, key(v)), v)
	slices.SortFunc(l, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return l
}

// drop removes the entry of l with key k.
func drop[T any](l []T, key func(T) string, k string) []T {
	return slices.DeleteFunc(l, func(v T) bool { return key(v) == k })
}

// Empty reports whether the state overrides nothing.
func (s *State) Empty() bool {
	return len(s.Overrides) == 0 && len(s.Breakers) == 0 && len(s.Plans) == 0
}

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
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// Action: side, canary, unflip, breaker, expire, reload, reseed,
	// init; a migration plan's plan, promote, rollback, pause, resume.
	Action string `json:"action"`
	// By is the admin token's name, or "ttl", "store" and "plan" for
	// what the gateway did by itself.
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
	// Evidence are the measurements behind a migration plan's decision:
	// each gate or trigger with its value and threshold.
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Evidence is one measured gate of a migration plan's decision.
type Evidence struct {
	// Gate names it as routes.yaml does: "promote.max_error_rate",
	// "rollback.error_rate".
	Gate string `json:"gate"`
	// Value is what was measured ("5.00% of 200 requests"), Threshold the
	// limit as configured ("5%").
	Value     string `json:"value"`
	Threshold string `json:"threshold"`
	// Result: held or failed (a promotion gate), ok or tripped (a
	// rollback trigger), or n/a (not measurable now, and why in Value).
	Result string `json:"result"`
}

// String is the evidence on one line.
func (e Evidence) String() string {
	return e.Gate + " " + e.Value + " (threshold " + e.Threshold + "): " + e.Result
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
	if len(e.Evidence) > 0 {
		ev := make([]string, len(e.Evidence))
		for i, x := range e.Evidence {
			ev[i] = x.String()
		}
		out = append(out, "evidence", strings.Join(ev, "; "))
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
