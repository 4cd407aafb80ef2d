package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// BenchmarkFleetRequestPath: the request path's cost in fleet mode (Redis
// store, heartbeats and resyncs running) against file mode, side by side,
// both with an override live on the route; "fleet-flipping" also changes
// the override through the admin API every 10 ms while requests run. The
// request path reads the applied state from memory in every mode, so the
// figures to compare are file/direct and fleet/direct.
//
//	go test ./test -run '^$' -bench FleetRequestPath -benchtime 3s
func BenchmarkFleetRequestPath(b *testing.B) {
	up := benchUpstream(b, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1,"title":"Strangler-fig migrations"}`))
	})
	rs := testutil.StartRedis(b)
	start := func(store string) *gw {
		dir := b.TempDir()
		tokens := filepath.Join(dir, "tokens")
		if err := os.WriteFile(tokens, []byte("bench "+adminToken+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		y := strings.Replace(benchYAML, `server: {access_log: "off"}`, fmt.Sprintf(`server:
  access_log: "off"
  store: %q
  admin: {tokens_file: %q, state_file: %q}`, store, tokens, filepath.Join(dir, "state.json")), 1)
		g := startGateway(b, y, map[string]string{"legacy": up.URL})
		flip(b, g, "new")
		return g
	}
	file, fleet := start("file"), start(rs.URL())
	run := func(name, url string, during func(stop <-chan struct{})) {
		b.Run(name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if during != nil {
				wg.Add(1)
				go func() { defer wg.Done(); during(stop) }()
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchGet(b, url)
				}
			})
			close(stop)
			wg.Wait()
		})
	}
	for range 2 { // interleaved, twice, against drift
		run("direct", up.URL+"/v2/courses/1", nil)
		run("file", file.URL+"/api/courses/1", nil)
		run("fleet", fleet.URL+"/api/courses/1", nil)
		run("fleet-flipping", fleet.URL+"/api/courses/1", func(stop <-chan struct{}) {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					flip(b, fleet, "new")
				}
			}
		})
	}
}

func flip(b *testing.B, g *gw, side string) {
	req, _ := http.NewRequest("POST", g.Ops+"/admin/routes/course/side", strings.NewReader(`{"side":"`+side+`","reason":"bench"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("flip: %d", resp.StatusCode)
	}
}
