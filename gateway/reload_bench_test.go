package gateway

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/internal/testutil"
)

// BenchmarkReload10kRoutes is Router.Reload of a 10,000-route file:
// load, compile, swap, the removed routes' series deleted, the old table
// closed.
func BenchmarkReload10kRoutes(b *testing.B) {
	path := b.TempDir() + "/routes.yaml"
	if err := os.WriteFile(path, []byte(testutil.BigRoutes(10000)), 0o600); err != nil {
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
