package routing

import (
	"errors"
	"fmt"
	"time"
)

// Override is on-call's change to a route, layered over routes.yaml: a
// forced side, or a canary percentage, with who, why and until when.
// Package admin keeps the live set and persists it; routing only reads it,
// in Plan.
type Override struct {
	Route   string    `json:"route"`
	Side    string    `json:"side,omitempty"`    // "legacy" or "new"
	Percent *float64  `json:"percent,omitempty"` // canary share to new
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires,omitzero"`

	side Side
	bp   uint32
}

// Compile validates the override and prepares it for Plan.
func (o *Override) Compile() error {
	switch o.Side {
	case "":
		if o.Percent == nil {
			return errors.New("an override sets side or percent")
		}
		bp, err := PercentToBasisPoints(*o.Percent)
		if err != nil {
			return fmt.Errorf("bad percentage %v: %v", *o.Percent, err)
		}
		o.bp = bp
	case "legacy":
		o.side = SideLegacy
	case "new":
		o.side = SideNew
	default:
		return fmt.Errorf("bad side %q: legacy or new", o.Side)
	}
	return nil
}

// Expired reports whether the override's TTL has passed at now.
func (o *Override) Expired(now time.Time) bool {
	return !o.Expires.IsZero() && !now.Before(o.Expires)
}

// Describe is the override in a few words, for logs and audit events:
// "side legacy until 2026-12-02T10:00:00Z", "canary 5.00%", or "none".
func (o *Override) Describe() string {
	if o == nil {
		return "none"
	}
	s := ""
	if o.Side != "" {
		s = "side " + o.Side
	} else if o.Percent != nil {
		s = fmt.Sprintf("canary %.2f%%", *o.Percent)
	}
	if !o.Expires.IsZero() {
		s += " until " + o.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// Plan is a route's side policy once an override is applied: its side,
// and the canary that may send part of a legacy route to new.
type Plan struct {
	Side Side
	// Canary supplies the cohort keys and salt; nil: no canary. Its own
	// BasisPoints may differ from the plan's when an override changed the
	// share.
	Canary      *Canary
	BasisPoints uint32
	// Overridden: an on-call override made this plan.
	Overridden bool
}

// Plan applies ov (nil: none) to the route's configuration. An override
// acts only on a route with a new side (without one there is nothing to
// flip to) that routes.yaml does not pin.
func (r *Route) Plan(ov *Override) Plan {
	p := Plan{Side: r.Side}
	if r.New != nil && r.Canary != nil && r.Side == SideLegacy {
		p.Canary, p.BasisPoints = r.Canary, r.Canary.BasisPoints
	}
	if ov == nil || r.New == nil || r.Pinned {
		return p
	}
	p.Overridden = true
	if ov.Side != "" {
		p.Side, p.Canary, p.BasisPoints = ov.side, nil, 0
		return p
	}
	p.Side, p.BasisPoints = SideLegacy, ov.bp
	if p.Canary == nil {
		p.Canary = r.Cohort
	}
	return p
}

// String describes the plan: "new", "legacy", or "legacy, 5.00% canary to
// new".
func (p Plan) String() string {
	if p.Side == SideLegacy && p.Canary != nil && p.BasisPoints > 0 {
		return fmt.Sprintf("legacy, %.2f%% canary to new", float64(p.BasisPoints)/100)
	}
	return p.Side.String()
}

// Decision is where one request goes.
type Decision struct {
	Side Side
	// ByCanary: a canary decided the side. Source is the key source the
	// cohort came from and Bucket the request's cohort bucket. Known is
	// false when the canary would decide on the client IP and the caller
	// could not give one (strangler route).
	ByCanary bool
	Source   KeySource
	Bucket   uint32
	Known    bool
	// Denied: the request may only be served by legacy (Request.LegacyOnly)
	// and the route's side is new: it must be refused, not forwarded.
	Denied bool
}

// Decide is the one rule for which side answers a request, used alike by
// serving, `strangler route` and the admin view: the override (nil: none)
// over routes.yaml, then the canary's sticky cohort. A legacy-only request
// stays on legacy under a canary and is denied when the side is new.
func (r *Route) Decide(ov *Override, keys KeyReader, legacyOnly bool) Decision {
	p := r.Plan(ov)
	d := Decision{Side: p.Side, Known: true}
	if p.Side == SideNew {
		d.Denied = legacyOnly
		return d
	}
	if p.Canary == nil || legacyOnly {
		return d
	}
	d.ByCanary = true
	key, src := p.Canary.CohortKey(keys)
	d.Source = src
	if key == nil {
		d.Known = false
		return d
	}
	d.Bucket = p.Canary.Bucket(key)
	if d.Bucket < p.BasisPoints {
		d.Side = SideNew
	}
	return d
}
