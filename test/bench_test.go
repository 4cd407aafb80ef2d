package test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Benchmarks run the gateway and its upstream in one process on loopback,
// each side by side with the same request sent straight to the upstream, so
// the figure to read is the ratio between "gateway" and "direct" in one run
// (this machine is small and shared; absolute numbers drift).
//
//	go test ./test -run '^$' -bench . -benchmem

const benchYAML = `
server: {access_log: "off"}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{legacy}}"]}
routes:
  - id: course
    match: {path: "/api/courses/{id}", methods: [GET]}
    side: new
    new: {upstream: courses, rewrite: "/v2/courses/{id}"}
`

var benchClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}

func benchGet(b *testing.B, url string) int64 {
	resp, err := benchClient.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return n
}

// benchUpstream serves h on loopback (a recorder would keep every request).
func benchUpstream(b *testing.B, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewServer(h)
	b.Cleanup(s.Close)
	return s
}

// BenchmarkProxySmall is one small JSON GET, routed by template, rewritten
// and proxied, against the same GET sent to the upstream directly.
func BenchmarkProxySmall(b *testing.B) {
	body := []byte(`{"id":1,"title":"Strangler-fig migrations","price":{"amount":"49.00","currency":"EUR"}}`)
	up := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	g := startGateway(b, benchYAML, map[string]string{"legacy": up.URL})
	// The same without the legacy inventory (on by default): the
	// difference is its cost on the request path.
	noInv := startGateway(b, benchYAML+"inventory: {enabled: false}\n", map[string]string{"legacy": up.URL})
	for _, c := range []struct{ name, url string }{
		{"direct", up.URL + "/v2/courses/1"},
		{"gateway", g.URL + "/api/courses/1"},
		{"gateway-inventory-off", noInv.URL + "/api/courses/1"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchGet(b, c.url)
				}
			})
		})
	}
}

// BenchmarkStreamDownload moves a 64 MiB body through the gateway and
// directly; MB/s is the throughput and B/op what the whole process (client,
// gateway, upstream) allocated per download: far below the body's size when
// the gateway streams.
func BenchmarkStreamDownload(b *testing.B) {
	const size = 64 << 20
	up := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, &patternReader{n: size})
	})
	g := startGateway(b, benchYAML, map[string]string{"legacy": up.URL})
	for _, c := range []struct{ name, url string }{
		{"direct", up.URL + "/export.csv"},
		{"gateway", g.URL + "/export.csv"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				if n := benchGet(b, c.url); n != size {
					b.Fatalf("got %d bytes, want %d", n, size)
				}
			}
		})
	}
}

// parallelGets runs b.N GETs of url in parallel and reports the p99 of the
// client's latency beside ns/op.
func parallelGets(b *testing.B, url string) {
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			t0 := time.Now()
			benchGet(b, url)
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
