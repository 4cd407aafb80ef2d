package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestDecodeLimits: a file over the byte limit is refused before anything
// is parsed, and one with too many routes before they are compiled, each
// with one problem at a position.
func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	b.WriteString("legacy: legacy\nupstreams:\n  legacy: {urls: [\"http://127.0.0.1:1\"]}\nroutes:\n")
	for i := range MaxRoutes + 1 {
		fmt.Fprintf(&b, "  - {id: r%d, match: {path: /r/%d}, side: legacy}\n", i, i)
	}
	if b.Len() > MaxFileBytes {
		t.Fatalf("the route-count case is %d bytes, over the byte limit: it would test the wrong limit", b.Len())
	}
	_, _, err := Decode("routes.yaml", b.Bytes())
	want := fmt.Sprintf("routes.yaml:5:3: routes: %d routes: at most %d per file", MaxRoutes+1, MaxRoutes)
	if err == nil || err.Error() != want {
		t.Fatalf("too many routes: %v, want %q", err, want)
	}

	big := []byte("legacy: legacy\n# " + strings.Repeat("x", MaxFileBytes) + "\n")
	_, _, err = Decode("routes.yaml", big)
	want = fmt.Sprintf("routes.yaml:1:1: file is %d bytes: a routes file may have at most %d (2 MiB); nothing was read past the limit", len(big), MaxFileBytes)
	if err == nil || err.Error() != want {
		t.Fatalf("too large: %v, want %q", err, want)
	}
	if ces, ok := err.(ConfigErrors); !ok || len(ces) != 1 {
		t.Fatalf("too large: %T with %d problems, want one ConfigError", err, len(ces))
	}
}
