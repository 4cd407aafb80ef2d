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

// FuzzObserve: any request target the gateway accepts is learnt (or
// counted in the overflow bucket) without a panic, and a snapshot of what
// was learnt restores.
func FuzzObserve(f *testing.F) {
	for _, s := range []string{"/", "/course.php?id=1", "/index.php?page=export&rows=5", "/?rest_route=%2Fwp%2Fv2%2Fposts%2F1",
		"/a/b/../c?x=%41&y", "/users/3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b/2024-01-31", "/%7B%7D/%25?a[]=1&a[]=2&=&&"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		var p routing.Path
		if _, err := p.Parse([]byte(target), nil); err != nil {
			return
		}
		if _, ok := routing.MethodOf([]byte(method)); !ok {
			return
		}
		inv := New(Options{MaxEndpoints: 4})
		for i := 0; i < 3; i++ {
			inv.Observe(method, &p, nil, routing.SideLegacy, 200, time.Millisecond, 1)
		}
		s := inv.Snapshot()
		var n int64
		for _, e := range s.Endpoints {
			n += e.Requests.Total()
		}
		if n+s.Overflow.Requests.Total() != 3 {
			t.Fatalf("%d requests counted, want 3", n+s.Overflow.Requests.Total())
		}
		if err := New(Options{}).Restore(s); err != nil {
			t.Fatalf("snapshot does not restore: %v", err)
		}
		_ = OpenAPI(BuildReport(s, nil))
	})
}
