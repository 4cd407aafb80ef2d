package shadow

import (
	"strconv"
	"strings"
)

// maxEdits bounds the line diff's work (Myers' algorithm costs
// O((N+M)·D) time and O(D²) memory for D edits): beyond it the differing
// region is reported as one block.
const maxEdits = 500

// excerptLines is how many lines of each side a stored excerpt shows.
const excerptLines = 5

// compareText compares two text bodies line by line, after the
// normalisers (and line endings: CRLF and LF agree), and reports each
// differing block of lines as a "body" difference at its line numbers.
func compareText(a, b []byte, jc *JSONComparer, s *sink) {
	as, bs := string(a), string(b)
	if len(jc.Normalize) > 0 {
		as, bs = normalize(jc.Normalize, as), normalize(jc.Normalize, bs)
	}
	if as == bs {
		return
	}
	al, bl := splitLines(as), splitLines(bs)
	for _, h := range diffLines(al, bl) {
		h := h
		s.add("body", func() Diff {
			return Diff{Path: "body", Line: h.a + 1, CandidateLine: h.b + 1,
				Control: excerpt(al[h.a:h.a+h.na], &jc.Values), Candidate: excerpt(bl[h.b:h.b+h.nb], &jc.Values)}
		})
	}
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// excerpt renders lines as Values says: the first few as text, or their
// count, size and digest.
func excerpt(lines []string, v *Values) string {
	if len(lines) == 0 {
		return "(no lines)"
	}
	if !v.Store {
		n := 0
		for _, l := range lines {
			n += len(l) + 1
		}
		return strconv.Itoa(len(lines)) + " line(s), " + digestText(strings.Join(lines, "\n"), n)
	}
	shown := lines
	if len(shown) > excerptLines {
		shown = shown[:excerptLines]
	}
	var sb strings.Builder
	for i, l := range shown {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(cut(l, valueCap))
	}
	if more := len(lines) - len(shown); more > 0 {
		sb.WriteString("\n… " + strconv.Itoa(more) + " more line(s)")
	}
	return sb.String()
}

func digestText(s string, n int) string {
	return strconv.Itoa(n) + " bytes, " + shortDigest([]byte(s))
}

// hunk is one differing block: lines a..a+na of the control replaced by
// b..b+nb of the candidate.
type hunk struct{ a, na, b, nb int }

// diffLines returns the differing blocks between two line lists: common
// leading and trailing lines are trimmed, the rest is diffed with Myers'
// algorithm up to maxEdits edits, else reported as one block.
func diffLines(a, b []string) []hunk {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(am) == 0 && len(bm) == 0 {
		return nil
	}
	hs, ok := myers(am, bm, maxEdits)
	if !ok {
		hs = []hunk{{0, len(am), 0, len(bm)}}
	}
	for i := range hs {
		hs[i].a += pre
		hs[i].b += pre
	}
	return hs
}

// myers diffs a and b (Myers 1986, "An O(ND) Difference Algorithm"),
// keeping each round's furthest reaching paths to walk back the edit
// script; false when more than maxD edits are needed.
func myers(a, b []string, maxD int) ([]hunk, bool) {
	n, m := len(a), len(b)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int // trace[d] holds v[-d..d] after round d
	end := -1
	for d := 0; d <= maxD && end < 0; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				end = d
			}
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
	}
	if end < 0 {
		return nil, false
	}
	// Walk back from (n, m), marking each line deleted or inserted.
	del, ins := make([]bool, n), make([]bool, m)
	x, y := n, m
	for d := end; d > 0; d-- {
		prev := trace[d-1] // v[-(d-1)..d-1]
		at := func(k int) int { return prev[k+d-1] }
		k := x - y
		var pk int
		if k == -d || k != d && at(k-1) < at(k+1) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
		}
		if pk == k+1 {
			ins[py] = true // down: b[py] inserted
		} else {
			del[px] = true // right: a[px] deleted
		}
		x, y = px, py
	}
	// Group runs of edits into hunks.
	var hs []hunk
	i, j := 0, 0
	for i < n || j < m {
		if i < n && j < m && !del[i] && !ins[j] {
			i++
			j++
			continue
		}
		h := hunk{a: i, b: j}
		for i < n && del[i] || j < m && ins[j] {
			for i < n && del[i] {
				i++
			}
			for j < m && ins[j] {
				j++
			}
		}
		if i == h.a && j == h.b {
			// Cannot happen with a consistent script; never loop.
			h.na, h.nb = n-i, m-j
			return append(hs, h), true
		}
		h.na, h.nb = i-h.a, j-h.b
		hs = append(hs, h)
	}
	return hs, true
}
