package test

import (
	"net/http"
	"strings"
	"testing"
)

// The headers plugin, end to end: what the upstream receives and what the
// client gets, top-level and per-route entries together.
func TestHeadersPlugin(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	legacy.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "PHP/5.3.3")
		w.Header().Set("Server", "Apache/2.2.15")
		w.Header().Set("X-Debug-Sql", "SELECT 1")
		_, _ = w.Write([]byte("legacy"))
	})
	g := startGateway(t, `legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
plugins:
  - headers:
      request:
        set: {X-Api-Version: "1"}
      response:
        remove: [X-Powered-By]
routes:
  - id: admin
    match: {prefix: /admin}
    side: legacy
    plugins:
      - headers:
          request:
            set: {X-Api-Version: "2", X-Internal: "yes"}
            remove: [X-Debug]
          response:
            set: {X-Frame-Options: DENY}
            remove: [X-Debug-Sql]
`, map[string]string{"legacy": legacy.URL})

	tests := []struct {
		name string
		path string
		hdr  []string
		// upstream request headers: want value ("" = absent)
		up map[string]string
		// client response headers: want value ("" = absent)
		down map[string]string
	}{
		{
			name: "top-level only on the default route",
			path: "/index.php",
			hdr:  []string{"X-Debug: 1"},
			up:   map[string]string{"X-Api-Version": "1", "X-Internal": "", "X-Debug": "1"},
			down: map[string]string{"X-Powered-By": "", "Server": "Apache/2.2.15", "X-Debug-Sql": "SELECT 1", "X-Frame-Options": ""},
		},
		{
			name: "route entries run after the top-level ones",
			path: "/admin/users",
			hdr:  []string{"X-Debug: 1", "X-Internal: forged"},
			up:   map[string]string{"X-Api-Version": "2", "X-Internal": "yes", "X-Debug": ""},
			down: map[string]string{"X-Powered-By": "", "X-Debug-Sql": "", "X-Frame-Options": "DENY"},
		},
		{
			// The plugin's headers are injected after the gateway strips
			// what the client controls: nominating them in Connection
			// cannot remove them.
			name: "a Connection header cannot remove injected headers",
			path: "/admin/users",
			hdr:  []string{"Connection: X-Internal, X-Api-Version"},
			up:   map[string]string{"X-Api-Version": "2", "X-Internal": "yes"},
			down: map[string]string{"X-Frame-Options": "DENY"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.get(tc.path, tc.hdr...)
			if resp.StatusCode != 200 || body != "legacy" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			got := legacy.last(t)
			if !strings.HasPrefix(got.RequestURI, tc.path) {
				t.Fatalf("upstream saw %s, want %s", got.RequestURI, tc.path)
			}
			for k, want := range tc.up {
				vals := got.Header.Values(k)
				switch {
				case want == "" && len(vals) > 0:
					t.Errorf("upstream received %s: %q, want it absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("upstream received %s: %q, want exactly [%q]", k, vals, want)
				}
			}
			for k, want := range tc.down {
				vals := resp.Header.Values(k)
				switch {
				case want == "" && len(vals) > 0:
					t.Errorf("client received %s: %q, want it absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("client received %s: %q, want exactly [%q]", k, vals, want)
				}
			}
		})
	}
}
