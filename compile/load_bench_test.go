package compile

import (
	"runtime"
	"testing"

	"github.com/strangler/strangler/internal/testutil"
)

// BenchmarkParse10kRoutes compiles a 10,000-route table (what a reload
// does) and reports the memory the compiled table keeps (retained-B).
//
//	go test ./compile -run '^$' -bench Parse10k -benchmem
func BenchmarkParse10kRoutes(b *testing.B) {
	data := []byte(testutil.BigRoutes(10000))
	opts := Options{}
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
