package test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const drainYAML = `
server:
  timeouts: {drain: {{drain}}, shutdown_delay: 0s}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
`

// blockingUpstream sends its headers and the first part of the body, then
// waits for release before sending the rest.
func blockingUpstream(t *testing.T) (*recorder, chan struct{}, chan struct{}) {
	t.Helper()
	up := newRecorder(t, "legacy")
	started, release := make(chan struct{}, 8), make(chan struct{})
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/export" {
			_, _ = io.WriteString(w, "quick")
			return
		}
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "part one;")
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "part two")
	})
	return up, started, release
}

// TestDrainFinishesInFlight proves graceful shutdown: readiness fails at
// once, the public listener stops accepting, and a response already
// streaming finishes whole before Shutdown returns nil.
func TestDrainFinishesInFlight(t *testing.T) {
	t.Parallel()
	up, started, release := blockingUpstream(t)
	g := startGateway(t, drainYAML, map[string]string{"legacy": up.URL, "drain": "10s"})

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := testClient.Get(g.URL + "/export")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{string(b), err}
	}()
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- g.srv.Shutdown(ctx)
	}()

	// Readiness fails while the drain runs (the operator listener stays up
	// until it ends, so a load balancer can see it).
	waitFor(t, func() bool {
		resp, err := http.Get(g.Ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// New connections are refused.
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", g.Addr, 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}

	close(release)
	r := <-got
	if r.err != nil || r.body != "part one;part two" {
		t.Fatalf("in-flight response = %q, %v; want it whole", r.body, r.err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil after a clean drain", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last request finished")
	}
	if !strings.Contains(g.logs(), `"msg":"drained"`) {
		t.Errorf("no drained log line:\n%s", g.logs())
	}
}

// TestDrainTimeout proves a request that outlives the drain timeout makes
// Shutdown report it instead of hanging.
func TestDrainTimeout(t *testing.T) {
	t.Parallel()
	up, started, release := blockingUpstream(t)
	defer close(release)
	g := startGateway(t, drainYAML, map[string]string{"legacy": up.URL, "drain": "300ms"})

	go func() {
		resp, err := testClient.Get(g.URL + "/export")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := g.srv.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 requests in flight") {
		t.Fatalf("Shutdown = %v, want a drain timeout naming 1 request in flight", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Shutdown ran until the caller's deadline instead of the drain timeout")
	}
	if !strings.Contains(g.logs(), "drain timed out") {
		t.Errorf("drain timeout not logged:\n%s", g.logs())
	}
}
