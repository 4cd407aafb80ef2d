package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Visitors are the demo's background traffic: requests for the route
// whose migration plan the demo shows advancing, from 200 made-up users
// (so canary cohorts split them), through the gateway's public listener
// on loopback. They stop when the plan has been at its last stage for a
// while, when the demo stops, or after maxVisiting, whichever comes first:
// the traffic is bounded in time and count.
type visitors struct {
	cancel context.CancelFunc
	done   chan struct{}
}

const (
	// VisitorRoute is the route the visitors call, the demo's plan.
	VisitorRoute = "course-seats"
	maxVisiting  = 5 * time.Minute
	// maxVisitorRate bounds -visitors: a demo, not a load generator.
	maxVisitorRate = 100
	// visitorsLinger: the visitors stay this long after the plan reached
	// its last stage, so its gates show the flipped route.
	visitorsLinger = 15 * time.Second
)

// startVisitors sends perSecond requests a second (at most
// maxVisitorRate) to the public listener, on loopback only.
func (d *Demo) startVisitors(perSecond int) {
	if perSecond <= 0 {
		return
	}
	perSecond = min(perSecond, maxVisitorRate)
	addr, ok := loopback(d.Gateway.PublicAddr)
	if !ok {
		d.opts.Logger.Warn("demo visitors not started: the public listener is not on loopback", "addr", d.Gateway.PublicAddr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), maxVisiting)
	v := &visitors{cancel: cancel, done: make(chan struct{})}
	d.visitors = v
	base := "http://" + addr
	cl := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(v.done)
		defer cancel()
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		check := time.NewTicker(time.Second)
		defer check.Stop()
		var complete time.Time
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-check.C:
				if d.planComplete(ctx) {
					if complete.IsZero() {
						complete = time.Now()
					}
					if time.Since(complete) > visitorsLinger {
						d.opts.Logger.Info("demo visitors stopped: the plan of " + VisitorRoute + " is complete")
						return
					}
				}
			case <-tick.C:
				req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/courses/%d/seats", base, 1+i%3), nil)
				if err != nil {
					return
				}
				req.Header.Set("X-User-Id", fmt.Sprintf("visitor-%d", i%200))
				if resp, err := cl.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
}

// loopback is the address on loopback that reaches a listener bound to
// addr: itself when its host is a loopback address, 127.0.0.1 (or ::1)
// with its port when it listens on every address; ok is false for any
// other host (the visitors never leave the machine).
func loopback(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "", false
	case ip.IsLoopback():
		return addr, true
	case ip.IsUnspecified() && ip.To4() != nil:
		return net.JoinHostPort("127.0.0.1", port), true
	case ip.IsUnspecified():
		return net.JoinHostPort("::1", port), true
	}
	return "", false
}

// planComplete reports whether the visitors' route's plan is at its last
// stage and not paused.
func (d *Demo) planComplete(ctx context.Context) bool {
	for _, p := range d.Gateway.Plans.Status(ctx).Plans {
		if p.Route == VisitorRoute {
			return !p.Paused && p.StageIndex == len(p.Stages)-1
		}
	}
	return true // no plan: nothing to show
}

// stopVisitors stops them and waits.
func (d *Demo) stopVisitors() {
	if v := d.visitors; v != nil {
		v.cancel()
		<-v.done
	}
}
