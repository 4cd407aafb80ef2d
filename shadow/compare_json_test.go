package shadow

import (
	"fmt"
	"strings"
	"testing"
)

func TestJSONPatterns(t *testing.T) {
	cases := []struct {
		pattern string
		path    []string
		want    bool
	}{
		{"$.a.b", []string{"a", "b"}, true},
		{"$.a.b", []string{"a", "c"}, false},
		{"$.a", []string{"a", "b"}, false},
		{"$.data[*].updated_at", []string{"data", "[3]", "updated_at"}, true},
		{"$.data[2].id", []string{"data", "[3]", "id"}, false},
		{"$..request_id", []string{"meta", "trace", "request_id"}, true},
		{"$..request_id", []string{"request_id"}, true},
		{"$..request_id", []string{"request_idx"}, false},
		{"$['odd.key']", []string{"odd.key"}, true},
		{"$.*", []string{"x"}, true},
	}
	for _, c := range cases {
		p, err := ParseJSONPath(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.match(c.path); got != c.want {
			t.Errorf("%s on %v = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"a.b", "$.", "$..", "$[x]", "$[1", "$x"} {
		if _, err := ParseJSONPath(bad); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}

func TestJSONCompare(t *testing.T) {
	ign, _ := ParseJSONPath("$..ts")
	uno, _ := ParseJSONPath("$.set")
	jc := &JSONComparer{Ignore: []JSONPath{ign}, Unordered: []JSONPath{uno}, Values: Values{Store: true}}
	cases := []struct {
		name, a, b string
		want       []string // "path control candidate"
	}{
		{"equal with key order and number spelling", `{"a":1,"b":[1,2],"c":1.50}`, `{"c":1.5,"b":[1,2],"a":1.0}`, nil},
		{"changed string", `{"p":{"cur":"EUR"}}`, `{"p":{"cur":"eur"}}`, []string{`$.p.cur "EUR" "eur"`}},
		{"missing key", `{"a":1,"b":2}`, `{"a":1}`, []string{`$.b 2 (absent)`}},
		{"extra key", `{"a":1}`, `{"a":1,"z":true}`, []string{`$.z (absent) true`}},
		{"array order matters", `{"l":[1,2]}`, `{"l":[2,1]}`, []string{`$.l[0] 1 2`, `$.l[1] 2 1`}},
		{"unordered array", `{"set":[{"k":1},{"k":2}]}`, `{"set":[{"k":2},{"k":1}]}`, nil},
		{"array length", `{"l":[1]}`, `{"l":[1,2]}`, []string{`$.l[1] (absent) 2`}},
		{"ignored anywhere", `{"x":{"ts":1},"ts":2}`, `{"x":{"ts":3},"ts":4}`, nil},
		{"type change", `{"n":"1"}`, `{"n":1}`, []string{`$.n "1" 1`}},
		{"null vs value", `{"n":null}`, `{"n":0}`, []string{`$.n null 0`}},
		{"top-level array", `[1,{"a":"x"}]`, `[1,{"a":"y"}]`, []string{`$[1].a "x" "y"`}},
	}
	for _, c := range cases {
		a, ok1 := decodeJSON([]byte(c.a))
		b, ok2 := decodeJSON([]byte(c.b))
		if !ok1 || !ok2 {
			t.Fatalf("%s: bad test JSON", c.name)
		}
		var got []string
		cmp := jc.Compare(a, b)
		for _, d := range cmp.Diffs {
			got = append(got, d.Path+" "+d.Control+" "+d.Candidate)
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
	}
	if g := GenericPath("$.a[12].b[3]"); g != "$.a[*].b[*]" {
		t.Errorf("GenericPath = %s", g)
	}
}

// FuzzJSONCompare: the comparator never panics, a document equals itself,
// and differences are symmetric in number.
func FuzzJSONCompare(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1}`, `{"a":2}`},
		{`[1,2,3]`, `[3,2,1]`},
		{`{"a":{"b":[{"c":null}]}}`, `{"a":{"b":[]}}`},
		{`{"n":1e400}`, `{"n":1E400}`},
		{`"x"`, `{"x":1}`},
	} {
		f.Add(s[0], s[1])
	}
	ign, _ := ParseJSONPath("$..id")
	uno, _ := ParseJSONPath("$.list")
	jc := &JSONComparer{Ignore: []JSONPath{ign}, Unordered: []JSONPath{uno}, Max: 100}
	f.Fuzz(func(t *testing.T, a, b string) {
		av, ok1 := decodeJSON([]byte(a))
		bv, ok2 := decodeJSON([]byte(b))
		if !ok1 || !ok2 {
			return
		}
		if d := jc.Compare(av, av); d.Count != 0 {
			t.Fatalf("%s differs from itself: %v", a, d.Diffs)
		}
		if x, y := jc.Compare(av, bv).Count, jc.Compare(bv, av).Count; x != y {
			t.Fatalf("asymmetric: %d vs %d differences for %s / %s", x, y, a, b)
		}
	})
}

// BenchmarkJSONCompare compares two typical 5 KB documents that differ in
// one field, as a shadow worker does (decode both, walk).
func BenchmarkJSONCompare(b *testing.B) {
	doc := func(cur string) []byte {
		var sb strings.Builder
		sb.WriteString(`{"courses":[`)
		for i := range 30 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":%d,"title":"Course number %d","price":{"amount":"49.00","currency":"%s"},"seats":30,"tags":["a","b"],"updated_at":"2026-11-23T10:00:00Z"}`, i, i, cur)
		}
		sb.WriteString(`],"total":30}`)
		return []byte(sb.String())
	}
	a, c := doc("EUR"), doc("eur")
	ign, _ := ParseJSONPath("$..updated_at")
	jc := &JSONComparer{Ignore: []JSONPath{ign}, Max: 100}
	b.SetBytes(int64(len(a)))
	b.ReportAllocs()
	for b.Loop() {
		av, _ := decodeJSON(a)
		cv, _ := decodeJSON(c)
		if d := jc.Compare(av, cv); len(d.Diffs) != 30 {
			b.Fatalf("%d diffs", len(d.Diffs))
		}
	}
}
