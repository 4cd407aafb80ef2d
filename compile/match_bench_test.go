package compile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strangler/strangler/routing"
)

// benchRoutes builds a realistic table of about 50 routes: per resource an
// exact list route, item and sub-item templates and the legacy .php page,
// plus prefixes, a {rest...} tail, and host- and header-constrained routes.
func benchRoutes() string {
	var b strings.Builder
	b.WriteString(`legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
  svc: {urls: ["http://127.0.0.1:9082"]}
routes:
`)
	resources := []string{"courses", "lessons", "users", "enrollments", "invoices", "payments", "reports", "quizzes", "forums", "messages"}
	for _, r := range resources {
		fmt.Fprintf(&b, "  - {id: %s-list, match: {path: /api/%s, methods: [GET]}, side: new, new: {upstream: svc, rewrite: /v2/%s}}\n", r, r, r)
		fmt.Fprintf(&b, "  - {id: %s-item, match: {path: \"/api/%s/{id}\"}, side: new, new: {upstream: svc, rewrite: \"/v2/%s/{id}\"}, legacy: {rewrite: \"/%s.php?id={id}\"}}\n", r, r, r, r)
		fmt.Fprintf(&b, "  - {id: %s-sub, match: {path: \"/api/%s/{id}/{sub}\", methods: [GET]}, side: legacy}\n", r, r)
		fmt.Fprintf(&b, "  - {id: %s-php, match: {path: /%s.php}, side: legacy}\n", r, r)
	}
	b.WriteString(`  - {id: courses-create, match: {path: /api/courses, methods: [POST]}, side: legacy}
  - {id: courses-beta, match: {path: /api/courses, headers: {X-Beta: "1"}}, side: new, new: {upstream: svc}}
  - {id: courses-tenant, match: {path: /api/courses, hosts: ["*.tenant.example.com"]}, side: legacy}
  - {id: course-lessons, match: {path: "/api/courses/{id}/lessons"}, side: new, new: {upstream: svc}}
  - {id: static, match: {prefix: /static}, side: legacy}
  - {id: assets, match: {prefix: /assets/}, side: new, new: {upstream: svc, rewrite: /cdn/}}
  - {id: export, match: {prefix: /export, methods: [GET]}, side: legacy, legacy: {rewrite: /export.php}}
  - {id: uploads, match: {path: "/uploads/{rest...}"}, side: new, new: {upstream: svc, rewrite: "/files/{rest}"}}
  - {id: api-v1, match: {prefix: /api/v1}, side: legacy}
  - {id: login, match: {path: /login, methods: [POST]}, side: legacy, legacy: {rewrite: /login.php}}
  - {id: admin, match: {prefix: /, hosts: [admin.example.com]}, side: legacy}
  - {id: about, match: {path: "/{lang}/about"}, side: legacy}
`)
	return b.String()
}

// peeker is a HeaderPeeker that does not allocate, like fasthttp's.
type peeker struct {
	name  string
	value []byte
}

func (p *peeker) Peek(k string) []byte {
	if p != nil && strings.EqualFold(k, p.name) {
		return p.value
	}
	return nil
}

type benchCase struct {
	name, method, host, path string
	h                        *peeker
	want                     string
}

var benchCases = []benchCase{
	{name: "exact", method: "GET", host: "www.example.com", path: "/api/courses", want: "courses-list"},
	{name: "exact-header", method: "GET", host: "www.example.com", path: "/api/courses", h: &peeker{"X-Beta", []byte("1")}, want: "courses-beta"},
	{name: "exact-host-wildcard", method: "GET", host: "acme.tenant.example.com:443", path: "/api/courses", want: "courses-tenant"},
	{name: "template", method: "GET", host: "www.example.com", path: "/api/invoices/12345", want: "invoices-item"},
	{name: "template-deep", method: "HEAD", host: "www.example.com", path: "/api/messages/77/replies", want: "messages-sub"},
	{name: "prefix", method: "GET", host: "www.example.com", path: "/static/css/site.min.css", want: "static"},
	{name: "rest", method: "PUT", host: "www.example.com", path: "/uploads/2024/05/photo.jpg", want: "uploads"},
	{name: "host-prefix", method: "GET", host: "admin.example.com", path: "/admin/index.php", want: "admin"},
	{name: "unmatched", method: "GET", host: "www.example.com", path: "/forum/viewtopic.php", want: "default"},
}

func prepareBench(tb testing.TB) (*routing.Table, []struct {
	c benchCase
	p routing.Path
}) {
	tb.Helper()
	tbl := mustParse(tb, benchRoutes())
	if n := len(tbl.Routes); n < 45 || n > 60 {
		tb.Fatalf("bench table has %d routes, want about 50", n)
	}
	var out []struct {
		c benchCase
		p routing.Path
	}
	for _, c := range benchCases {
		var p routing.Path
		if _, err := p.Parse([]byte(c.path), nil); err != nil {
			tb.Fatalf("%s: %v", c.path, err)
		}
		out = append(out, struct {
			c benchCase
			p routing.Path
		}{c, p})
	}
	return tbl, out
}

func BenchmarkMatch(b *testing.B) {
	tbl, cases := prepareBench(b)
	for _, tc := range cases {
		method, host := []byte(tc.c.method), []byte(tc.c.host)
		p := tc.p
		if r := tbl.Match(method, host, &p, tc.c.h); r.ID != tc.c.want {
			b.Fatalf("%s: matched %s, want %s", tc.c.name, r.ID, tc.c.want)
		}
		b.Run(tc.c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tbl.Match(method, host, &p, tc.c.h)
			}
		})
	}
}

// BenchmarkRequestPath is the whole per-request path work: split the
// target, canonicalise, match.
func BenchmarkRequestPath(b *testing.B) {
	tbl := mustParse(b, benchRoutes())
	for _, target := range []string{"/api/invoices/12345?expand=lines", "/api//courses/./42/%7Euser/../lessons"} {
		t := []byte(target)
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			scratch := make([]byte, 0, 256)
			var p routing.Path
			method, host := []byte("GET"), []byte("www.example.com")
			for b.Loop() {
				s, err := p.Parse(t, scratch)
				if err != nil {
					b.Fatal(err)
				}
				scratch = s
				tbl.Match(method, host, &p, (*peeker)(nil))
			}
		})
	}
}

// TestMatchAllocs: matching allocates nothing (a project target), whatever
// kind of route wins.
func TestMatchAllocs(t *testing.T) {
	tbl, cases := prepareBench(t)
	for _, tc := range cases {
		method, host := []byte(tc.c.method), []byte(tc.c.host)
		p := tc.p
		var got *routing.Route
		allocs := testing.AllocsPerRun(200, func() {
			got = tbl.Match(method, host, &p, tc.c.h)
		})
		if got.ID != tc.c.want {
			t.Errorf("%s: matched %s, want %s", tc.c.name, got.ID, tc.c.want)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Match, want 0", tc.c.name, allocs)
		}
	}
}
