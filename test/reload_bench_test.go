package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkReload: the client's throughput and p99 with the routes file
// reloaded continuously (every 10 ms, alternating a flip) vs never.
//
//	go test ./test -run '^$' -bench Reload -benchtime 3s
func BenchmarkReload(b *testing.B) {
	up := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) })
	for _, reload := range []bool{false, true} {
		name := "no-reloads"
		if reload {
			name = "reload-every-10ms"
		}
		b.Run(name, func(b *testing.B) {
			yaml := func(side string) string {
				return strings.ReplaceAll(`
server: {access_log: "off", reload: {watch: 0s}, admin: {state_file: "`+filepath.Join(b.TempDir(), "s.json")+`"}}
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
  new: {urls: ["{{up}}"]}
routes:
  - {id: r, match: {prefix: /api}, side: `+side+`, new: {upstream: new}}
`, "{{up}}", up.URL)
			}
			path := filepath.Join(b.TempDir(), "routes.yaml")
			os.WriteFile(path, []byte(yaml("legacy")), 0o600)
			g := startGatewayFile(b, path)
			stop := make(chan struct{})
			var done sync.WaitGroup
			if reload {
				done.Add(1)
				go func() {
					defer done.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						os.WriteFile(path, []byte(yaml([]string{"legacy", "new"}[i%2])), 0o600)
						_, _ = g.srv.Router.Reload()
					}
				}()
			}
			parallelGets(b, g.URL+"/api/x")
			close(stop)
			done.Wait()
			b.ReportMetric(g.metric("strangler_config_generation", nil), "generations")
		})
	}
}

// bigRoutesYAML is a 10,000-route file over 20 upstreams (the shape of
// bench/routes10k.go). Odd generations flip a tenth of the routes to the
// other side and replace a hundred route ids with new ones; even ones go
// back.
func bigRoutesYAML(up string, gen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: {access_log: \"off\", reload: {watch: 0s}}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://%s\"]}\n", up)
	for u := 0; u < 20; u++ {
		fmt.Fprintf(&b, "  svc%02d: {urls: [\"http://%s\"]}\n", u, up)
	}
	b.WriteString("routes:\n")
	for i := 0; i < 10000; i++ {
		id := fmt.Sprintf("r%d", i)
		if i < 100 && gen%2 == 1 {
			id = fmt.Sprintf("g%d", i)
		}
		side := []string{"legacy", "new"}[i%2]
		if i%10 == 0 && gen%2 == 1 {
			side = []string{"new", "legacy"}[i%2]
		}
		fmt.Fprintf(&b, "  - {id: %s, match: {path: \"/small/%s/{id}\", methods: [GET]}, side: %s, new: {upstream: svc%02d, rewrite: /small}}\n", id, id, side, i%20)
	}
	return b.String()
}

// BenchmarkReload10kRoutesMemory: a gateway with 10,000 routes, each
// requested once, then reloaded five times (requests to every route after
// each): the live heap after the first and the fifth reload (it must not
// grow with the number of reloads: removed routes' series are deleted,
// old tables are freed), and the time of a reload.
//
//	go test ./test -run '^$' -bench Reload10k -benchtime 1x
func BenchmarkReload10kRoutesMemory(b *testing.B) {
	up := fastUpstream(b)
	path := filepath.Join(b.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(bigRoutesYAML(up, 0)), 0o600); err != nil {
		b.Fatal(err)
	}
	g := startGatewayFile(b, path)
	g.srv.Router.Proxy().SetAccessLog(nil)
	c := &fasthttp.HostClient{Addr: g.Addr, MaxConns: 64}
	walk := func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for i := 0; i < 10000; i++ {
			req.SetRequestURI(fmt.Sprintf("http://%s/small/r%d/1", g.Addr, i))
			if err := c.Do(req, resp); err != nil {
				b.Fatal(err)
			}
		}
	}
	liveHeap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc) / (1 << 20)
	}
	for b.Loop() {
		walk()
		var after []float64
		var reload time.Duration
		for gen := 1; gen <= 5; gen++ {
			if err := os.WriteFile(path, []byte(bigRoutesYAML(up, gen)), 0o600); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if _, err := g.srv.Router.Reload(); err != nil {
				b.Fatal(err)
			}
			reload += time.Since(t0)
			walk()
			after = append(after, liveHeap())
		}
		b.ReportMetric(after[0], "heap-MiB-after-1")
		b.ReportMetric(after[4], "heap-MiB-after-5")
		b.ReportMetric(after[4]/after[0], "heap-5/1")
		b.ReportMetric(float64(reload.Milliseconds())/5, "reload-ms")
	}
}
