package inventory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/routing"
)

// observe feeds one request to inv.
func observe(t testing.TB, inv *Inventory, method, target string, side routing.Side, status int) {
	t.Helper()
	var p routing.Path
	if _, rerr := p.Parse([]byte(target), nil); rerr != nil {
		t.Fatalf("%s: %v", target, rerr)
	}
	inv.Observe(method, &p, nil, side, status, 3*time.Millisecond, 100)
}

// endpointNames returns the endpoints' names, sorted.
func endpointNames(inv *Inventory) []string {
	var out []string
	for _, e := range inv.Snapshot().Endpoints {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func TestTemplateInference(t *testing.T) {
	t.Parallel()
	uuids := []string{
		"3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b", "a1b2c3d4-e5f6-4789-9abc-def012345678",
		"00000000-0000-4000-8000-000000000001",
	}
	slugs := func(prefix string, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("%s/%s-%s-%d", prefix, []string{"how", "why", "when"}[i%3], []string{"legacy", "php", "rewrite", "migration"}[i%4], i))
		}
		return out
	}
	tests := []struct {
		name string
		reqs []string // "METHOD target"
		want []string
	}{
		{
			name: "numeric ids",
			reqs: []string{"GET /api/users/1", "GET /api/users/42", "GET /api/users/1234567", "GET /api/users/42/orders/7", "GET /api/users/9/orders/8"},
			want: []string{"GET /api/users/{id}", "GET /api/users/{id}/orders/{id}"},
		},
		{
			name: "uuids and hex ids",
			reqs: []string{
				"GET /files/" + uuids[0], "GET /files/" + uuids[1], "DELETE /files/" + uuids[2],
				"GET /objects/507f1f77bcf86cd799439011", "GET /objects/5f8d0d55b54764421b7156c9",
				"GET /commits/da39a3ee5e6b4b0d3255bfef95601890afd80709",
			},
			want: []string{"DELETE /files/{uuid}", "GET /commits/{hex}", "GET /files/{uuid}", "GET /objects/{hex}"},
		},
		{
			name: "dates",
			reqs: []string{"GET /reports/2024-01-31/summary", "GET /reports/2025-12-01/summary", "GET /reports/2024-13-01/summary"},
			// 2024-13-01 is no date: a literal, kept as such (one value).
			want: []string{"GET /reports/2024-13-01/summary", "GET /reports/{date}/summary"},
		},
		{
			name: "mixed: literals beside ids",
			reqs: []string{"GET /users/me", "GET /users/search", "GET /users/17", "GET /users/18", "POST /users"},
			want: []string{"GET /users/me", "GET /users/search", "GET /users/{id}", "POST /users"},
		},
		{
			name: "query-keyed PHP pages",
			reqs: []string{
				"GET /course.php?id=1", "GET /course.php?id=2", "GET /course.php?id=3&utm_source=newsletter",
				"GET /index.php?page=export&format=csv", "GET /index.php?page=export&format=json",
				"GET /index.php?page=courses", "GET /index.php?page=courses&sort=title", "GET /index.php",
				"GET /courses.php?page=2", "GET /courses.php",
			},
			want: []string{
				"GET /course.php", "GET /courses.php", "GET /index.php",
				"GET /index.php?format=csv&page=export", "GET /index.php?format=json&page=export",
				"GET /index.php?page=courses",
			},
		},
		{
			name: "a path carried in the query",
			reqs: []string{"GET /?rest_route=/wp/v2/posts", "GET /?rest_route=%2Fwp%2Fv2%2Fposts%2F12", "GET /?rest_route=/wp/v2/posts/13", "GET /"},
			want: []string{"GET /", "GET /?rest_route=/wp/v2/posts", "GET /?rest_route=/wp/v2/posts/{id}"},
		},
		{
			name: "many distinct slugs collapse",
			reqs: prefixed("GET ", slugs("/blog", 40)),
			want: []string{"GET /blog/{slug}"},
		},
		{
			name: "a few fixed words stay",
			reqs: []string{"GET /shop/cart", "GET /shop/checkout", "GET /shop/catalog", "GET /shop/wishlist", "GET /shop/cart"},
			want: []string{"GET /shop/cart", "GET /shop/catalog", "GET /shop/checkout", "GET /shop/wishlist"},
		},
		{
			name: "many plain words collapse too",
			reqs: prefixed("GET ", words("/tags", 40)),
			want: []string{"GET /tags/{slug}"},
		},
		{
			name: "collapse merges what is below",
			reqs: append(prefixed("GET ", slugs("/p", 12)), "GET /p/how-legacy-0/comments", "GET /p/why-php-1/comments/5"),
			want: []string{"GET /p/{slug}", "GET /p/{slug}/comments", "GET /p/{slug}/comments/{id}"},
		},
		{
			// /c/cat-0 collapses first (12 slug-like children); then /c
			// collapses and merges cat-0's collapsed subtree with the
			// others' words: "about" joins {slug}.
			name: "a collapse merges collapsed and plain subtrees",
			reqs: append(prefixed("GET /c/", slugs("cat-0", 12)), prefixed("GET /c/", catAbout(11))...),
			want: []string{"GET /c/{slug}/{slug}"},
		},
		{
			name: "many selector values collapse into a parameter",
			reqs: prefixed("GET ", words("/index.php?page=", 40)),
			want: []string{"GET /index.php"},
		},
		{
			name: "trailing slash and root",
			reqs: []string{"GET /", "GET /docs/", "GET /docs"},
			want: []string{"GET /", "GET /docs", "GET /docs/"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv := New(Options{})
			for _, r := range tc.reqs {
				m, target, _ := strings.Cut(r, " ")
				observe(t, inv, m, target, routing.SideLegacy, 200)
			}
			if got := endpointNames(inv); !slices.Equal(got, tc.want) {
				t.Errorf("endpoints:\n got %q\nwant %q", got, tc.want)
			}
			// Deterministic: any order of the same requests learns the same
			// endpoints with the same counts.
			for seed := uint64(1); seed <= 5; seed++ {
				perm := slices.Clone(tc.reqs)
				rand.New(rand.NewPCG(seed, seed)).Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
				inv2 := New(Options{})
				for _, r := range perm {
					m, target, _ := strings.Cut(r, " ")
					observe(t, inv2, m, target, routing.SideLegacy, 200)
				}
				if got := counts(inv2); got != counts(inv) {
					t.Fatalf("order %d learnt differently:\n%s\nvs\n%s", seed, got, counts(inv))
				}
			}
		})
	}
}

func counts(inv *Inventory) string {
	var b strings.Builder
	for _, e := range inv.Snapshot().Endpoints {
		fmt.Fprintf(&b, "%s %d %v\n", e.Name(), e.Requests.Total(), e.Params)
	}
	return b.String()
}

func catAbout(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("cat-%d/about", i))
	}
	return out
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = p + s[i]
	}
	return out
}

// words returns n distinct plain words (no digits, no dashes) under
// prefix: prefix/alpha, prefix/bravo... or prefix=alpha for a query.
func words(prefix string, n int) []string {
	base := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	sep := "/"
	if strings.HasSuffix(prefix, "=") {
		sep = ""
	}
	var out []string
	for i := 0; i < n; i++ {
		w := base[i%len(base)] + strings.Repeat("x", i/len(base))
		out = append(out, prefix+sep+w)
	}
	return out
}
