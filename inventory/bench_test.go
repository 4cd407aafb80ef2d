package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/strangler/strangler/routing"
)

// steadyTargets are what a warmed-up inventory sees: known endpoints with
// ever-new ids, selectors and parameters.
var steadyTargets = []string{
	"/api/courses/%d",
	"/course.php?id=%d",
	"/index.php?page=export&rows=%d",
	"/index.php/api/courses/%d",
	"/?rest_route=%%2Fwp%%2Fv2%%2Fposts%%2F%d",
	"/users/%d/orders/5f8d0d55b54764421b7156c9?sort=desc&utm_source=mail",
	"/static/app.js?v=%d",
	"/",
}

func steadyPaths(tb testing.TB, n int) []routing.Path {
	tb.Helper()
	var out []routing.Path
	for i := 0; i < n; i++ {
		for _, f := range steadyTargets {
			target := f
			if f != "/" {
				target = fmt.Sprintf(f, i+1)
			}
			var p routing.Path
			if _, err := p.Parse([]byte(target), nil); err != nil {
				tb.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestObserveDoesNotAllocate: in steady state (the endpoints known) an
// observation allocates nothing, whatever the ids in the URL.
func TestObserveDoesNotAllocate(t *testing.T) {
	inv := New(Options{})
	r := &routing.Route{ID: "default"}
	warm := steadyPaths(t, 3)
	for i := range warm {
		inv.Observe("GET", &warm[i], r, routing.SideLegacy, 200, time.Millisecond, 512)
	}
	paths := steadyPaths(t, 50)
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		p := &paths[i%len(paths)]
		i++
		inv.Observe("GET", p, r, routing.SideLegacy, 200, time.Millisecond, 512)
	})
	if allocs != 0 {
		t.Fatalf("Observe allocates %.2f times per request in steady state", allocs)
	}
	if n := inv.Len(); n != len(steadyTargets) {
		t.Fatalf("%d endpoints, want %d: %v", n, len(steadyTargets), endpointNames(inv))
	}
}

// BenchmarkObserve is the request path's cost of the inventory: one
// observation of a known endpoint (read lock, atomic counters), serially
// and from parallel goroutines (go test -bench Observe -cpu 1,2).
func BenchmarkObserve(b *testing.B) {
	inv := New(Options{})
	r := &routing.Route{ID: "default"}
	paths := steadyPaths(b, 64)
	for i := range paths {
		inv.Observe("GET", &paths[i], r, routing.SideLegacy, 200, time.Millisecond, 512)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			inv.Observe("GET", &paths[i%len(paths)], r, routing.SideLegacy, 200, time.Millisecond, 512)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				inv.Observe("GET", &paths[i%len(paths)], r, routing.SideLegacy, 200, time.Millisecond, 512)
				i++
			}
		})
	})
}
