package test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// streamSize is the body pushed through the gateway in the streaming tests:
// large enough that buffering it would show in the allocation count many
// times over, small enough for a -race run on two cores.
const streamSize = 256 << 20

// streamClient is testClient with a timeout that guards against a hang
// only: a -race run on two busy cores may take tens of seconds to push
// streamSize through, and speed is measured in benchmarks, not here.
var streamClient = &http.Client{Timeout: 3 * time.Minute, Transport: testClient.Transport, CheckRedirect: testClient.CheckRedirect}

// pattern is the repeating content of streamed bodies, so both ends can
// verify every byte without holding the body.
var pattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}()

// patternReader yields n bytes of pattern.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.off < r.n {
		i := int(r.off % int64(len(pattern)))
		c := copy(p[k:], pattern[i:])
		if rem := r.n - r.off; int64(c) > rem {
			c = int(rem)
		}
		k += c
		r.off += int64(c)
	}
	return k, nil
}

func hashOf(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return fmt.Sprintf("%x", h.Sum(nil)), n, err
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestStreamingDownload: a 256 MiB response passes through with every byte
// intact while the whole process (gateway, upstream and client together)
// allocates a small fraction of it: the gateway never holds the body.
func TestStreamingDownload(t *testing.T) {
	rec := newRecorder(t, "legacy")
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "content-length", true: "chunked"}[chunked], func(t *testing.T) {
			rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", strconv.Itoa(streamSize))
				}
				_, _ = io.CopyBuffer(w, &patternReader{n: streamSize}, make([]byte, 32<<10))
			})
			g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\""+rec.URL+"\"]}}\n", nil)
			want, _, _ := hashOf(&patternReader{n: streamSize})
			runtime.GC()
			before := totalAlloc()
			resp, err := streamClient.Get(g.URL + "/export")
			if err != nil {
				t.Fatal(err)
			}
			got, n, err := hashOf(resp.Body)
			resp.Body.Close()
			allocated := totalAlloc() - before
			if err != nil || n != streamSize || got != want {
				t.Fatalf("received %d bytes (err %v), digest match %v", n, err, got == want)
			}
			t.Logf("allocated %d MiB to stream %d MiB", allocated>>20, streamSize>>20)
			if allocated > streamSize/8 {
				t.Errorf("allocated %d MiB while streaming %d MiB: the body is being buffered", allocated>>20, streamSize>>20)
			}
		})
	}
}

// TestStreamingUpload: a 256 MiB request body (known length and chunked)
// reaches the upstream whole, without the gateway holding it.
func TestStreamingUpload(t *testing.T) {
	// The recorder keeps bodies; this upstream only hashes them.
	var digest atomic.Value
	up := newHashingUpstream(t, &digest)
	g := startGateway(t, `
legacy: legacy
server: {limits: {max_body_bytes: unlimited}}
upstreams: {legacy: {urls: ["`+up+`"]}}
`, nil)
	want, _, _ := hashOf(&patternReader{n: streamSize})
	for _, known := range []bool{true, false} {
		t.Run(map[bool]string{true: "content-length", false: "chunked"}[known], func(t *testing.T) {
			var body io.Reader = &patternReader{n: streamSize}
			if !known {
				body = io.NopCloser(body) // hide the length: Go sends it chunked
			}
			req, _ := http.NewRequest("PUT", g.URL+"/upload", body)
			if known {
				req.ContentLength = streamSize
			}
			runtime.GC()
			before := totalAlloc()
			resp, err := streamClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			allocated := totalAlloc() - before
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got, _ := digest.Load().(string); got != want+"/"+strconv.Itoa(streamSize) {
				t.Fatalf("upstream received %q, want %s/%d", got, want, streamSize)
			}
			t.Logf("allocated %d MiB to stream %d MiB up", allocated>>20, streamSize>>20)
			if allocated > streamSize/8 {
				t.Errorf("allocated %d MiB while streaming %d MiB up: the body is being buffered", allocated>>20, streamSize>>20)
			}
		})
	}
}

func newHashingUpstream(t *testing.T, digest *atomic.Value) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum, n, err := hashOf(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		digest.Store(sum + "/" + strconv.FormatInt(n, 10))
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClientAbortReleasesUpstream: a client that goes away mid-download
// makes the gateway close the upstream connection (the upstream's write
// fails) instead of reading the rest of the body into memory.
func TestClientAbortReleasesUpstream(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	aborted := make(chan error, 1)
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		_, err := io.CopyBuffer(w, &patternReader{n: 1 << 30}, make([]byte, 32<<10))
		aborted <- err
	})
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\""+rec.URL+"\"]}}\n", nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/big", nil)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-aborted:
		if err == nil {
			t.Fatal("the upstream wrote the whole 1 GiB: the gateway kept reading after the client left")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream still writing 10s after the client left")
	}
	// The request is finished and logged, not left in flight.
	testutil.Eventually(t, 5*time.Second, func() bool { return g.srv.Router.InFlight() == 0 }, func() string {
		return fmt.Sprintf("%d requests still in flight after the abort", g.srv.Router.InFlight())
	})
}

// TestUpstreamStallMidBody: an upstream that stops sending in the middle of
// a body is cut off after the idle timeout; the client sees a truncated
// response (the connection closes) rather than hanging.
func TestUpstreamStallMidBody(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rec := newRecorder(t, "legacy")
	// Registered after the recorder, so it runs before the recorder's
	// Close (cleanups run last-in first-out), which waits for handlers.
	t.Cleanup(func() { close(release) })
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-release
	})
	g := startGateway(t, `legacy: legacy
upstreams:
  legacy: {urls: ["`+rec.URL+`"], timeouts: {idle: 200ms}}
`, nil)
	resp, err := testClient.Get(g.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want a truncated body (unexpected EOF), got %d bytes, err %v", len(b), err)
	}
	if string(b) != "partial" {
		t.Errorf("got %q before the cut", b)
	}
	if got := g.metric("strangler_upstream_errors_total", map[string]string{"upstream": "legacy", "kind": "body"}); got != 1 {
		t.Errorf("strangler_upstream_errors_total{kind=body} = %v, want 1", got)
	}
}
