package proxy

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/upstream"
)

// Terminal is the handler at the end of every route's plugin chain.
func (p *Proxy) Terminal() fiber.Handler { return p.forward }

// forward is the terminal handler of every route's plugin chain: it picks
// the side (routing's one Decide), takes a slot in the route's bulkhead,
// prepares the body, and calls the side's upstream (with retries); when
// the new side cannot serve a request and the route falls back, legacy
// serves it. Shadow sampling happens here too; the candidate is sent after
// the response is complete (see finish).
func (p *Proxy) forward(c *fiber.Ctx) error {
	st := stateOf(c)
	if st == nil {
		return errors.New("proxy: forward called outside the proxy")
	}
	r := st.route
	d := r.Decide(p.override(r.ID), &st.keys, st.legacyOnly != nil)
	st.side, st.decided = d.Side, true
	if d.Denied {
		st.decided = false // refused by the gateway, sent nowhere
		return st.legacyOnly
	}
	if d.ByCanary {
		p.metrics.forRoute(r.ID, d.Side.String()).canaryDecided()
	}
	if !r.Bulkhead.Acquire() {
		p.metrics.Shed.WithLabelValues("route", r.ID).Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: r.ID}
	}
	st.routeBulk = r.Bulkhead
	st.idempotent = r.IsIdempotent(st.mbit)
	tgt := r.Target(d.Side)
	if st.facts.connUpgrade && p.upgradeAsked(st) {
		// Its own path: one connection, never retried, replayed or
		// shadowed (upgrade.go).
		return p.upgrade(c, st, tgt)
	}
	fallback := r.Fallback && tgt.Side == routing.SideNew
	shadowed := p.shadowSampled(st)
	if err := p.prepareBody(st, fallback || tgt.Upstream.Retry.Attempts > 1 || shadowed); err != nil {
		return err
	}
	err := p.call(c, st, tgt)
	if fallback {
		// The request and its fallback count in the same window, when the
		// outcome is known: a slow failure must not find the window that
		// counted its request gone.
		r.FallbackBudget.Request()
	}
	if err == nil {
		if shadowed {
			p.startShadow(c, st)
		}
		return nil
	}
	if !fallback {
		return err
	}
	reason := st.fallbackReason(err)
	if reason == "" {
		return err
	}
	if !r.FallbackBudget.Allow() {
		p.metrics.FallbackBudgetExhausted.WithLabelValues(r.ID).Inc()
		p.log.Warn("fallback budget exhausted", "route", r.ID, "reason", reason, "request_id", b2s(st.reqID()))
		return err
	}
	p.metrics.Fallbacks.WithLabelValues(r.ID, reason).Inc()
	st.fallback = reason
	// The new side's slot and error are its own, not legacy's.
	st.releaseUpstream()
	st.upErr = nil
	return p.call(c, st, r.Legacy)
}

// fallbackReason says why a failed call to the new side may be served by
// legacy, or "" when it may not: the new service may have acted on it.
func (st *reqState) fallbackReason(err error) string {
	if !st.canReplay() {
		return ""
	}
	k := upstream.KindOf(err)
	if k == 0 || k == upstream.KindBody {
		return "" // not an upstream failure (the client's body, say)
	}
	if k.Sent() && !st.idempotent {
		return "" // something may have been sent: only what is safe to repeat
	}
	return k.String()
}
