package test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
