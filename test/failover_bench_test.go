package test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkFailover: under steady load, the new service dies. Reported per
// run: the share of client requests that failed (failed-%), the time from
// the kill until the breaker opened (ms-to-open, polled every 100µs), and
// the requests sent (reqs). Run both variants side by side:
//
//	go test ./test -run '^$' -bench Failover -benchtime 3x
func BenchmarkFailover(b *testing.B) {
	for _, fallback := range []bool{true, false} {
		name := "no-fallback"
		if fallback {
			name = "fallback"
		}
		b.Run(name, func(b *testing.B) {
			var failedPct, msToOpen, reqs float64
			for b.Loop() {
				f, o, n := failoverRun(b, fallback)
				failedPct += f
				msToOpen += o
				reqs += n
			}
			n := float64(b.N)
			b.ReportMetric(failedPct/n, "failed-%")
			b.ReportMetric(msToOpen/n, "ms-to-open")
			b.ReportMetric(reqs/n, "reqs")
		})
	}
}

func failoverRun(b *testing.B, fallback bool) (failedPct, msToOpen, reqs float64) {
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
	legacy := httptest.NewServer(http.HandlerFunc(ok))
	defer legacy.Close()
	newSvc := httptest.NewServer(http.HandlerFunc(ok))
	fb := ""
	if fallback {
		fb = "fallback: legacy"
	}
	yaml := `
server: {access_log: "off"}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses:
    urls: ["{{new}}"]
    breaker: {consecutive_failures: 5, open_for: 1h}
routes:
  - id: courses
    match: {prefix: /api}
    side: new
    ` + fb + `
    new: {upstream: courses}
`
	g := startGateway(b, yaml, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	br := g.srv.Router.Table().Upstreams["courses"].Breaker

	const clients, runFor, killAt = 4, 600 * time.Millisecond, 200 * time.Millisecond
	stop := make(chan struct{})
	wait := loadLoop(benchClient, g.URL+"/api/x", clients, stop)
	time.Sleep(killAt)
	killed := time.Now()
	newSvc.CloseClientConnections()
	newSvc.Close()
	opened := time.Duration(-1)
	for time.Since(killed) < runFor-killAt {
		if opened < 0 && br.State() == "open" {
			opened = time.Since(killed)
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	sent, failed := wait()
	if opened < 0 {
		b.Fatalf("breaker never opened (state %s)", br.State())
	}
	return 100 * float64(failed) / float64(sent), float64(opened.Microseconds()) / 1000, float64(sent)
}
