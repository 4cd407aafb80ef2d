package shadow

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	brotli "github.com/molecule-man/go-brrr"
)

// posts renders a JSON array of n posts; change alters posts at the given
// indices in five fields each.
func posts(n int, change ...int) []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		v := "a"
		for _, c := range change {
			if c == i {
				v = "b"
			}
		}
		fmt.Fprintf(&sb, `{"id":%d,"title":"%s","author":"%s","excerpt":"%s","status":"%s","slug":"%s"}`, i, v, v, v, v, v)
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

func jsonObs(side string, body []byte) *Observation {
	return &Observation{Name: side, Status: 200, ContentType: "application/json", Body: body}
}

// TestCompareBudget: two 100-element arrays differing in elements 3, 50
// and 97 (five fields each): the whole document is compared and all three
// are reported; with a budget of 10 differences the result is marked
// truncated, every difference is still counted, and the paths beyond the
// budget are kept (issue 14: the silent cap of 50 inspected only the
// first elements and did not say so).
func TestCompareBudget(t *testing.T) {
	t.Parallel()
	a, b := posts(100), posts(100, 3, 50, 97)
	x := &Experiment{MaxBody: 1 << 20, JSON: JSONComparer{Max: 100}}
	cmp, err := x.Compare(jsonObs("legacy", a), jsonObs("new", b))
	if err != nil {
		t.Fatal(err)
	}
	elems := map[string]bool{}
	for _, d := range cmp.Diffs {
		elems[d.Path[:strings.IndexByte(d.Path, ']')+1]] = true
	}
	if !elems["$[3]"] || !elems["$[50]"] || !elems["$[97]"] || len(elems) != 3 || cmp.Count != 15 || cmp.Truncated() {
		t.Errorf("elements %v, %d differences (truncated %v); want $[3], $[50], $[97], 15, not truncated", elems, cmp.Count, cmp.Truncated())
	}
	x.JSON.Max = 10
	cmp, _ = x.Compare(jsonObs("legacy", a), jsonObs("new", b))
	if !cmp.Truncated() || len(cmp.Diffs) != 10 || cmp.Count != 15 {
		t.Errorf("budget 10: truncated %v, %d kept of %d; want truncated, 10 of 15", cmp.Truncated(), len(cmp.Diffs), cmp.Count)
	}
	if fmt.Sprint(cmp.More) != "map[$[*].author:1 $[*].excerpt:1 $[*].slug:1 $[*].status:1 $[*].title:1]" {
		t.Errorf("paths beyond the budget = %v, want the last element's five fields", cmp.More)
	}
	// The tally counts the truncated result and its paths beyond the
	// budget, in requests.
	tl := NewTally()
	tl.Add(&Result{Route: "r", Result: "mismatch", Diffs: cmp.Diffs, More: cmp.More, Truncated: true, Control: &Observation{Name: "legacy"}, Candidate: &Observation{Name: "new"}})
	rep := tl.Report("r", Readiness{}, 10)
	if rep.Truncated != 1 || len(rep.TopPaths) != 5 || rep.TopPaths[0].Requests != 1 || rep.TopPaths[0].Differences != 3 {
		t.Errorf("report: truncated %d, paths %+v", rep.Truncated, rep.TopPaths)
	}
}

// TestCompareHeaders: headers are ordered lists of values; Content-Type
// compares by media type; the rendering shows every value.
func TestCompareHeaders(t *testing.T) {
	t.Parallel()
	two := []string{"<https://x/?page=2>; rel=\"next\"", "<https://x/?page=9>; rel=\"last\""}
	cases := []struct {
		name string
		a, b map[string][]string
		want string // "" for no difference
	}{
		{"same two values", map[string][]string{"Link": two}, map[string][]string{"Link": two}, ""},
		{"one of two", map[string][]string{"Link": two}, map[string][]string{"Link": two[:1]}, `header:Link ["<https://x/?page=2>; rel=\"next\"","<https://x/?page=9>; rel=\"last\""] | <https://x/?page=2>; rel="next"`},
		{"order", map[string][]string{"Link": two}, map[string][]string{"Link": {two[1], two[0]}}, `header:Link ["<https://x/?page=2>; rel=\"next\"","<https://x/?page=9>; rel=\"last\""] | ["<https://x/?page=9>; rel=\"last\"","<https://x/?page=2>; rel=\"next\""]`},
		{"absent", map[string][]string{"Link": two[:1]}, nil, `header:Link <https://x/?page=2>; rel="next" | (absent)`},
		{"media type", map[string][]string{"Content-Type": {"application/json; charset=utf-8"}}, map[string][]string{"Content-Type": {"application/json"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := &Experiment{MaxBody: 1 << 10, Headers: []string{"Content-Type", "Link"}, JSON: JSONComparer{Values: Values{Store: true}}}
			cmp, _ := x.Compare(&Observation{Status: 200, Header: c.a}, &Observation{Status: 200, Header: c.b})
			got := ""
			for _, d := range cmp.Diffs {
				got += d.Path + " " + d.Control + " | " + d.Candidate
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zl(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func rawDeflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func br(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := brotli.NewWriter(&buf, 5)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestCompareEncodings: a compressed body equals the same body
// uncompressed (gzip, deflate in both spellings, br, a list); a body that
// expands beyond the cap is not compared; a corrupt one is a difference.
func TestCompareEncodings(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"id":1,"title":"<p>Hello</p>"}`)
	other := []byte(`{"id":1,"title":"<p>Bye</p>"}`)
	x := &Experiment{MaxBody: 1 << 10, JSON: JSONComparer{Values: Values{Store: true}}}
	obs := func(body []byte, enc string) *Observation {
		o := jsonObs("legacy", body)
		o.Encoding = enc
		return o
	}
	for _, c := range []struct {
		name string
		a, b *Observation
		want string
	}{
		{"gzip vs identity", obs(gz(doc), "gzip"), obs(doc, ""), ""},
		{"zlib deflate vs identity", obs(zl(doc), "deflate"), obs(doc, "identity"), ""},
		{"raw deflate vs br", obs(rawDeflate(doc), "deflate"), obs(br(doc), "br"), ""},
		{"gzip then br", obs(br(gz(doc)), "gzip, br"), obs(doc, ""), ""},
		{"gzip, different", obs(gz(doc), "gzip"), obs(other, ""), `$.title "<p>Hello</p>" "<p>Bye</p>"`},
		{"corrupt gzip", obs([]byte("not gzip at all"), "gzip"), obs(doc, ""), "body bad gzip body: gzip: invalid header, 15 bytes, sha256:"},
		{"unknown coding", obs(doc, "zstd"), obs(doc, ""), `body content-encoding "zstd" not decoded, `},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmp, err := x.Compare(c.a, c.b)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, d := range cmp.Diffs {
				got += d.Path + " " + d.Control + " " + d.Candidate
			}
			if c.want == "" && got != "" || c.want != "" && !strings.HasPrefix(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
	bomb := gz(bytes.Repeat([]byte(" "), 1<<20)) // 1 MiB of spaces: about 1 KiB compressed
	if len(bomb) > 1<<11 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	if _, err := x.Compare(obs(bomb, "gzip"), obs(doc, "")); !errors.Is(err, errTooLarge) {
		t.Errorf("a body expanding past the cap: err %v, want errTooLarge", err)
	}
}

// TestCompareText: text bodies are compared line by line after the
// normalisers; each differing block is a "body" difference at its lines,
// shown as text (stored values) or as line count, size and digest.
func TestCompareText(t *testing.T) {
	t.Parallel()
	page := func(nonce, price string) []byte {
		return []byte("<html>\r\n<head><script nonce=\"" + nonce + "\"></script></head>\r\n<body>\r\n<h1>Course</h1>\r\n<p>Price: " + price + "</p>\r\n<p>Seats: 30</p>\r\n</body>\r\n</html>\r\n")
	}
	norm := []Normalizer{{Regex: regexp.MustCompile(`nonce="[^"]*"`), Replace: `nonce="…"`}}
	obs := func(b []byte) *Observation {
		return &Observation{Status: 200, ContentType: "text/html; charset=utf-8", Body: b}
	}
	x := &Experiment{MaxBody: 1 << 16, JSON: JSONComparer{Normalize: norm, Values: Values{Store: true}}}
	if cmp, _ := x.Compare(obs(page("abc", "49 EUR")), obs(page("xyz", "49 EUR"))); cmp.Count != 0 {
		t.Errorf("only the nonce differs: %+v", cmp.Diffs)
	}
	cmp, _ := x.Compare(obs(page("abc", "49 EUR")), obs(page("xyz", "49 eur")))
	if len(cmp.Diffs) != 1 {
		t.Fatalf("diffs = %+v, want one block", cmp.Diffs)
	}
	d := cmp.Diffs[0]
	if d.Path != "body" || d.Line != 5 || d.CandidateLine != 5 || d.Control != "<p>Price: 49 EUR</p>" || d.Candidate != "<p>Price: 49 eur</p>" {
		t.Errorf("diff = %+v, want line 5 as text, not escaped", d)
	}
	// Without normalisers the nonce line differs too: two blocks.
	x.JSON.Normalize = nil
	if cmp, _ := x.Compare(obs(page("abc", "49 EUR")), obs(page("xyz", "49 eur"))); len(cmp.Diffs) != 2 || cmp.Diffs[0].Line != 2 {
		t.Errorf("without normalisers: %+v", cmp.Diffs)
	}
	// Values not stored: lines, bytes, digest; never the text.
	x.JSON.Values.Store = false
	cmp, _ = x.Compare(obs(page("abc", "49 EUR")), obs(page("abc", "49 eur")))
	if len(cmp.Diffs) != 1 || strings.Contains(cmp.Diffs[0].Control, "EUR") || !strings.HasPrefix(cmp.Diffs[0].Control, "1 line(s), 21 bytes, sha256:") {
		t.Errorf("values off: %+v", cmp.Diffs)
	}
	// Binary bodies: digest and length.
	bin := func(b []byte) *Observation { return &Observation{Status: 200, ContentType: "image/png", Body: b} }
	cmp, _ = x.Compare(bin([]byte{0x89, 'P', 0}), bin([]byte{0x89, 'P', 1, 2}))
	if len(cmp.Diffs) != 1 || !strings.HasPrefix(cmp.Diffs[0].Control, "3 bytes, sha256:") || !strings.HasPrefix(cmp.Diffs[0].Candidate, "4 bytes, sha256:") {
		t.Errorf("binary: %+v", cmp.Diffs)
	}
}

// TestDiffLines checks the line diff's blocks against small cases.
func TestDiffLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want string
	}{
		{"a b c", "a b c", ""},
		{"a b c", "a x c", "1+1/1+1"},
		{"a b c d e", "a c d x e", "1+1/1+0 4+0/3+1"},
		{"a b", "a b c", "2+0/2+1"},
		{"x a b", "a b", "0+1/0+0"},
		{"a b c d", "d c b a", "0+3/0+0 4+0/1+3"},
	}
	for _, c := range cases {
		var got []string
		for _, h := range diffLines(strings.Fields(c.a), strings.Fields(c.b)) {
			got = append(got, fmt.Sprintf("%d+%d/%d+%d", h.a, h.na, h.b, h.nb))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%q vs %q: %v, want %s", c.a, c.b, got, c.want)
		}
	}
	// Beyond the edit bound: one block for the differing region.
	var a, b []string
	for i := range 2 * maxEdits {
		a = append(a, fmt.Sprint("a", i))
		b = append(b, fmt.Sprint("b", i))
	}
	if hs := diffLines(a, b); len(hs) != 1 || hs[0] != (hunk{0, len(a), 0, len(b)}) {
		t.Errorf("unbounded diff: %+v", hs)
	}
}

// TestValuesNotStoredByDefault: without store_values a differing value is
// kept as its type, length and digest; redacted paths keep the type only,
// even when values are stored.
func TestValuesNotStoredByDefault(t *testing.T) {
	t.Parallel()
	secret, _ := ParseJSONPath("$..password")
	a := []byte(`{"content":"draft: the launch is on Friday","n":7,"ok":true,"password":"hunter2","tags":["x"]}`)
	b := []byte(`{"content":"published","n":8,"ok":false,"password":"hunter3","tags":["x","y"]}`)
	x := &Experiment{MaxBody: 1 << 10, JSON: JSONComparer{Values: Values{Redact: []JSONPath{secret}}}}
	cmp, _ := x.Compare(jsonObs("legacy", a), jsonObs("new", b))
	got := map[string]string{}
	for _, d := range cmp.Diffs {
		got[d.Path] = d.Control + " | " + d.Candidate
	}
	want := map[string]*regexp.Regexp{
		"$.content":  regexp.MustCompile(`^string, 30 bytes, sha256:[0-9a-f]{12} \| string, 9 bytes, sha256:[0-9a-f]{12}$`),
		"$.n":        regexp.MustCompile(`^number sha256:[0-9a-f]{12} \| number sha256:[0-9a-f]{12}$`),
		"$.ok":       regexp.MustCompile(`^true \| false$`),
		"$.password": regexp.MustCompile(`^\[redacted\] string \| \[redacted\] string$`),
		"$.tags[1]":  regexp.MustCompile(`^\(absent\) \| string, 1 bytes, sha256:`),
	}
	for p, re := range want {
		if !re.MatchString(got[p]) {
			t.Errorf("%s = %q, want %s", p, got[p], re)
		}
	}
	for _, d := range cmp.Diffs {
		if strings.Contains(d.Control+d.Candidate, "launch") || strings.Contains(d.Control+d.Candidate, "hunter") {
			t.Errorf("a value was kept: %+v", d)
		}
	}
	x.JSON.Values.Store = true
	cmp, _ = x.Compare(jsonObs("legacy", a), jsonObs("new", b))
	for _, d := range cmp.Diffs {
		if d.Path == "$.content" && d.Control != `"draft: the launch is on Friday"` || d.Path == "$.password" && strings.Contains(d.Control, "hunter") {
			t.Errorf("store_values: %+v", d)
		}
	}
}

// TestRedactQuery: parameters are redacted by exact name, never because
// their name contains a word ("author" is not "auth").
func TestRedactQuery(t *testing.T) {
	t.Parallel()
	x := &Experiment{RedactQueries: []string{"email"}}
	cases := []struct{ in, want string }{
		{"author=1&access_token=abc", "author=1&access_token=[redacted]"},
		{"Author=2&AUTH=x&key=k&monkey=m", "Author=2&AUTH=[redacted]&key=[redacted]&monkey=m"},
		{"email=a%40b.c&sort=asc", "email=[redacted]&sort=asc"},
		{"password", "password"},
		{"", ""},
	}
	for _, c := range cases {
		if got := x.RedactQuery(c.in); got != c.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if !x.RedactHeader("cookie") || x.RedactHeader("X-Author") {
		t.Error("headers are redacted by exact name")
	}
	if s := Shape("GET", "/api/posts/{id}", "b=1&a=2&b=3"); s != "GET /api/posts/{id}?a&b" {
		t.Errorf("Shape = %q", s)
	}
}

// BenchmarkTextCompare compares two 64 KB HTML pages that differ in one
// line and in a nonce on every page (normalised), as a shadow worker does.
func BenchmarkTextCompare(b *testing.B) {
	page := func(nonce, price string) []byte {
		var sb strings.Builder
		fmt.Fprintf(&sb, "<html><head><script nonce=%q></script></head><body>\n", nonce)
		for i := 0; sb.Len() < 64<<10; i++ {
			if i == 700 {
				fmt.Fprintf(&sb, "<p>Price: %s</p>\n", price)
				continue
			}
			fmt.Fprintf(&sb, "<li><a href=\"/course.php?id=%d\">Course number %d</a></li>\n", i, i)
		}
		sb.WriteString("</body></html>\n")
		return []byte(sb.String())
	}
	a, c := page("abc", "49 EUR"), page("xyz", "49 eur")
	x := &Experiment{MaxBody: 1 << 20, JSON: JSONComparer{Max: 100,
		Normalize: []Normalizer{{Regex: regexp.MustCompile(`nonce="[^"]*"`), Replace: `nonce=""`}}}}
	oa := &Observation{Status: 200, ContentType: "text/html", Body: a}
	oc := &Observation{Status: 200, ContentType: "text/html", Body: c}
	b.SetBytes(int64(len(a)))
	b.ReportAllocs()
	for b.Loop() {
		if cmp, _ := x.Compare(oa, oc); len(cmp.Diffs) != 1 {
			b.Fatalf("%d diffs", len(cmp.Diffs))
		}
	}
}
