package testutil

import (
	"fmt"
	"strings"
)

// BigRoutes is a table of n routes over 20 upstreams, half of them on
// new, a tenth with a canary: the shape of bench/routes10k.go.
func BigRoutes(n int) string {
	var b strings.Builder
	b.WriteString("server: {access_log: \"off\"}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://127.0.0.1:9081\"]}\n")
	for u := 0; u < 20; u++ {
		fmt.Fprintf(&b, "  svc%02d: {urls: [\"http://127.0.0.1:9082\"]}\n", u)
	}
	b.WriteString("routes:\n")
	for i := 0; i < n; i++ {
		side := []string{"legacy", "new"}[i%2]
		fmt.Fprintf(&b, "  - {id: r%d, match: {path: \"/small/r%d/{id}\", methods: [GET]}, side: %s, new: {upstream: svc%02d, rewrite: /small}", i, i, side, i%20)
		if i%10 == 0 {
			b.WriteString(", canary: {percent: 10}")
		}
		b.WriteString("}\n")
	}
	return b.String()
}
