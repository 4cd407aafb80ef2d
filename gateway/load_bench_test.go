package gateway

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// bigRoutes is a table of n routes over 20 upstreams, half of them on
// new, a tenth with a canary: the shape of bench/routes10k.go.
func bigRoutes(n int) string {
	var b strings.Builder
	b.WriteString("server: {access_log: \"off\"}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://127.0.0.1:9081\"]}\n")
	for u := 0; u < 20; u++ {
		fmt.Fprintf(&b, "  svc%02d: {urls: [\"http://127.0.0.1:9082\"]}\n", u)
	}
	b.WriteString("routes:\n")
	for i := 0; i < n; i++ {
		side := []string{"legacy", "new"}[i%2]
		fmt.Fprintf(&b, "  - {id: r%d, match: {path: \"/small/r%d/{id}\", methods: [GET]}, side: %s, new: {upstream: svc%02d, rewrite: /small}", i, i, side, i%20)
		if i%10 == 0 {
			b.WriteString(", canary: {percent: 10}")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// BenchmarkParse10kRoutes compiles a 10,000-route table (what a reload
// does) and reports the memory the compiled table keeps (retained-B).
//
//	go test ./gateway -run '^$' -bench Parse10k -benchmem
func BenchmarkParse10kRoutes(b *testing.B) {
	data := []byte(bigRoutes(10000))
	opts := LoadOptions{Metrics: NewMetrics(prometheus.NewRegistry())}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	t, err := Parse("routes.yaml", data, opts)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	retained := float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)
	runtime.KeepAlive(t)
	_ = t.CloseExcept(nil)
	b.ResetTimer()
	for b.Loop() {
		opts.Previous = t
		nt, err := Parse("routes.yaml", data, opts)
		if err != nil {
			b.Fatal(err)
		}
		_ = t.CloseExcept(nt)
		t = nt
	}
	b.ReportMetric(retained, "retained-B")
}

// BenchmarkReload10kRoutes is Router.Reload of a 10,000-route file:
// load, compile, swap, the removed routes' series deleted, the old table
// closed.
func BenchmarkReload10kRoutes(b *testing.B) {
	path := b.TempDir() + "/routes.yaml"
	if err := os.WriteFile(path, []byte(bigRoutes(10000)), 0o600); err != nil {
		b.Fatal(err)
	}
	rt := NewRouter(RouterOptions{Metrics: NewMetrics(prometheus.NewRegistry())})
	t, err := rt.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	rt.Swap(t)
	for b.Loop() {
		if _, err := rt.Reload(); err != nil {
			b.Fatal(err)
		}
	}
	_ = rt.Table().Close()
}
