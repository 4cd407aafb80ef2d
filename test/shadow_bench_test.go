package test

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkShadowPrimary: the client's path with shadowing at 0% and at
// 100% of requests, side by side. Reported: ns/op (throughput) and the
// p99 of the client's latency.
//
//	go test ./test -run '^$' -bench ShadowPrimary -benchtime 3s
func BenchmarkShadowPrimary(b *testing.B) {
	body := []byte(`{"id":1,"title":"Strangler-fig migrations","price":{"amount":"49.00","currency":"EUR"}}`)
	up := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	for _, pct := range []int{0, 100} {
		b.Run(fmt.Sprintf("shadow=%d%%", pct), func(b *testing.B) {
			yaml := fmt.Sprintf(`
server: {access_log: "off"}
legacy: legacy
shadow: {workers: 2, queue: 1000}
upstreams:
  legacy: {urls: ["{{up}}"]}
  new: {urls: ["{{up}}"]}
routes:
  - id: r
    match: {prefix: /}
    side: legacy
    new: {upstream: new}
    shadow: {percent: %d, key: [header:X-Missing]}
`, pct)
			g := startGateway(b, yaml, map[string]string{"up": up.URL})
			parallelGets(b, g.URL+"/api/courses/1")
		})
	}
}
