package admin

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// auditKeep is how many audit events the gateway keeps in memory for
// GET /admin/audit; older ones are in the log only.
const auditKeep = 500

// AuditEvent is one change made through the admin API, or by the gateway
// itself (an override's TTL running out): logged as an "audit" line and
// kept, newest last, for GET /admin/audit.
type AuditEvent struct {
	// ID increases by one per event since start.
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // side, canary, unflip, breaker, expire, reload
	// By is the admin token's name, or "ttl" for an expiry.
	By       string `json:"by"`
	Route    string `json:"route,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Previous string `json:"previous,omitempty"`
	New      string `json:"new,omitempty"`
	Result   string `json:"result,omitempty"`
	// Persisted says whether the state store kept an override change
	// (false: live in memory only, retried; see Overrides).
	Persisted *bool `json:"persisted,omitempty"`
}

// AuditLog keeps the last events in a bounded ring: in memory and per
// process (a restart empties it; the log keeps every event).
type AuditLog struct {
	mu     sync.Mutex
	events []AuditEvent
	start  int // index of the oldest event once the ring is full
	seq    int64
	keep   int
}

// NewAuditLog returns a ring that keeps the last keep events.
func NewAuditLog(keep int) *AuditLog { return &AuditLog{keep: keep} }

// add stores ev with the next id and returns it.
func (l *AuditLog) add(ev AuditEvent) AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ev.ID = strconv.FormatInt(l.seq, 10)
	if len(l.events) < l.keep {
		l.events = append(l.events, ev)
	} else {
		l.events[l.start] = ev
		l.start = (l.start + 1) % l.keep
	}
	return ev
}

// AuditQuery selects events: newest first, at most Limit (default 100),
// only those whose non-empty fields match.
type AuditQuery struct {
	Limit                   int
	Route, Upstream, Action string
}

// Query returns the events q selects, newest first.
func (l *AuditLog) Query(q AuditQuery) []AuditEvent {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []AuditEvent{}
	n := len(l.events)
	for i := n - 1; i >= 0 && len(out) < q.Limit; i-- {
		ev := l.events[(l.start+i)%n]
		if (q.Route != "" && ev.Route != q.Route) || (q.Upstream != "" && ev.Upstream != q.Upstream) ||
			(q.Action != "" && ev.Action != q.Action) {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// record logs ev as an "audit" line (never a token: By is the token's
// name) and keeps it.
func (l *AuditLog) record(log *slog.Logger, ev AuditEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	attrs := []any{"action", ev.Action, "by", ev.By}
	for _, kv := range [][2]string{{"route", ev.Route}, {"upstream", ev.Upstream}, {"reason", ev.Reason},
		{"previous", ev.Previous}, {"new", ev.New}, {"result", ev.Result}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if ev.Persisted != nil {
		attrs = append(attrs, "persisted", *ev.Persisted)
	}
	log.Info("audit", attrs...)
	if l != nil {
		l.add(ev)
	}
}

// listAudit serves GET /admin/audit[?route=&upstream=&action=&limit=N].
func (a *API) listAudit(r *http.Request) (any, error) {
	q := AuditQuery{Route: r.URL.Query().Get("route"), Upstream: r.URL.Query().Get("upstream"), Action: r.URL.Query().Get("action")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > auditKeep {
			return nil, badRequest("limit must be a number from 1 to %d", auditKeep)
		}
		q.Limit = n
	}
	return map[string]any{"events": a.overrides.audit.Query(q), "kept": auditKeep}, nil
}
