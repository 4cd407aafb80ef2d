package routing

import "time"

// StageKind is what a migration plan's stage does to its route.
type StageKind uint8

const (
	// StageStart is the plan's first stage, "shadow" or "legacy": the
	// route as routes.yaml says (no override of the plan's).
	StageStart StageKind = iota
	// StageCanary sends a sticky share of the route's users to new.
	StageCanary
	// StageNew sends the whole route to new.
	StageNew
)

// Stage is one step of a migration plan.
type Stage struct {
	// Name is the stage as routes.yaml writes it, canonical: "shadow",
	// "legacy", "canary 5%", "new".
	Name string
	Kind StageKind
	// BasisPoints is a canary stage's share of users sent to new.
	BasisPoints uint32
}

// Percent is a canary stage's share, in percent.
func (s Stage) Percent() float64 { return float64(s.BasisPoints) / 100 }

// NewTraffic reports whether the new side serves live requests in the
// stage (a route's own configured canary aside).
func (s Stage) NewTraffic() bool { return s.Kind != StageStart }

// Override is the override that puts a route in the stage (by is who
// writes it): nil for the first stage, which is routes.yaml as written.
func (s Stage) Override(route, by, reason string, at time.Time) *Override {
	ov := &Override{Route: route, By: by, Reason: reason, At: at}
	switch s.Kind {
	case StageCanary:
		p := s.Percent()
		ov.Percent = &p
	case StageNew:
		ov.Side = "new"
	default:
		return nil
	}
	return ov
}

// Matches reports whether ov (nil: none) is the override that puts a
// route in the stage.
func (s Stage) Matches(ov *Override) bool {
	switch s.Kind {
	case StageCanary:
		if ov == nil || ov.Side != "" || ov.Percent == nil {
			return false
		}
		bp, err := PercentToBasisPoints(*ov.Percent)
		return err == nil && bp == s.BasisPoints
	case StageNew:
		return ov != nil && ov.Side == "new"
	}
	return ov == nil
}

// Migration is a route's compiled migration plan (routes.yaml
// migration:). Package migration runs it.
type Migration struct {
	Stages []Stage
	// Every is how often the plan is evaluated.
	Every time.Duration
	// Observe: a dry run; the plan reports what it would do.
	Observe bool
	// LatencyFloor: p99s below it count as equal to it in ratios.
	LatencyFloor time.Duration
	Promote      PromoteGates
	Rollback     RollbackTriggers
}

// Mode is "observe" or "act".
func (m *Migration) Mode() string {
	if m.Observe {
		return "observe"
	}
	return "act"
}

// StageIndex returns the index of the stage named name, or -1.
func (m *Migration) StageIndex(name string) int {
	for i, s := range m.Stages {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// PromoteGates must all hold, at every evaluation for Hold, before a
// plan moves to its next stage. Unset gates (nil) are not checked.
type PromoteGates struct {
	// ShadowReady requires the route's shadow verdict to be ready.
	ShadowReady bool
	// MinRequests on the new side in the stage.
	MinRequests int64
	// MaxErrorRate is a share (0.01 is 1%).
	MaxErrorRate *float64
	// MaxErrorRateVsLegacy is in shares too (0.005 is +0.5 points).
	MaxErrorRateVsLegacy *float64
	// MaxP99VsLegacy is a ratio (1.5).
	MaxP99VsLegacy *float64
	Hold           time.Duration
}

// RollbackTriggers: any one tripping sends the route back to the last
// stage whose gates held and pauses the plan. Unset triggers (nil) are
// not checked.
type RollbackTriggers struct {
	// ErrorRate is a share (0.05 is 5%).
	ErrorRate *float64
	// P99VsLegacy is a ratio (3).
	P99VsLegacy *float64
	BreakerOpen bool
	// MinRequests in an interval before its rates count.
	MinRequests int64
}
