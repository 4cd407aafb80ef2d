package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/internal/cli"
)

// shadowLines is a results file as the shadow engine writes it
// (server.shadow.file), with one line the report cannot read and one
// without a route.
var shadowLines = []string{
	`{"route":"course-detail","result":"match"}`,
	`{"route":"course-detail","result":"mismatch","diffs":[{"path":"$.items[0].price.currency","control":"\"EUR\"","candidate":"\"eur\""}]}`,
	`{"route":"course-detail","result":"mismatch","diffs":[{"path":"$.items[3].price.currency","control":"\"EUR\"","candidate":"\"eur\""},{"path":"status","control":"200","candidate":"404"}],"noisy":["$.nonce"]}`,
	`{"route":"course-detail","result":"mismatch","diffs":[{"path":"$.title","control":"\"Go\"","candidate":"\"go\""}]}`,
	`{"route":"course-detail","result":"match"}`,
	`{"route":"course-list","result":"error"}`,
	`{"route":"course-list","result":"dropped"}`,
	`{"route":"course-list","result":"skipped"}`,
	`{"route":"course-list","result":"match"}`,
	`not json`,
	`{"result":"match"}`,
}

// flagUsage is what the flag package prints after a bad flag.
const flagUsage = `Usage of strangler shadow report:
  -file string
    	shadow results file (shadow.file in routes.yaml) (default "strangler-shadow.jsonl")
  -route string
    	report only this route
  -top int
    	differing paths to show per route (default 5)
`

func writeResults(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow.jsonl")
	body := ""
	if len(lines) > 0 {
		body = strings.Join(lines, "\n") + "\n"
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShadowReport: per route, requests compared and the match rate,
// other outcomes counted, the most frequent differing paths (array
// indices generalised) with an example, noisy paths; unreadable lines are
// skipped and counted.
func TestShadowReport(t *testing.T) {
	t.Parallel()
	file := writeResults(t, shadowLines)
	empty := writeResults(t, nil)
	garbage := writeResults(t, []string{"GET /index.php 200", "<html>", `{"result":"match"}`})
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	huge := filepath.Join(t.TempDir(), "huge.jsonl")
	if err := os.WriteFile(huge, []byte(shadowLines[0]+"\n"+`{"route":"a","result":"match","path":"`+strings.Repeat("x", 17<<20)+`"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const detail = `route course-detail: 5 compared, 40.00% matched
  $.items[*].price.currency            2 mismatches  e.g. "EUR" vs "eur"
  $.title                              1 mismatches  e.g. "Go" vs "go"
  status                               1 mismatches  e.g. 200 vs 404
  noisy (ignored): $.nonce
`
	const list = "route course-list: 1 compared, 100.00% matched (1 error, 1 skipped, 1 dropped)\n"
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"every route", []string{"-file", file}, 0, detail + list, "2 unreadable lines skipped\n"},
		{"one route", []string{"-file", file, "-route", "course-list"}, 0, list, "2 unreadable lines skipped\n"},
		{"top 1", []string{"-file", file, "-top", "1", "-route", "course-detail"}, 0, `route course-detail: 5 compared, 40.00% matched
  $.items[*].price.currency            2 mismatches  e.g. "EUR" vs "eur"
  ... 2 more paths
  noisy (ignored): $.nonce
`, "2 unreadable lines skipped\n"},
		{"top 0", []string{"-file", file, "-top", "0", "-route", "course-detail"}, 0,
			"route course-detail: 5 compared, 40.00% matched\n  ... 3 more paths\n", "2 unreadable lines skipped\n"},
		{"a route without results", []string{"-file", file, "-route", "nope"}, 0, file + ": no shadow results for route nope\n", "2 unreadable lines skipped\n"},
		{"an empty file", []string{"-file", empty}, 0, empty + ": no shadow results\n", ""},
		{"not a results file", []string{"-file", garbage}, 0, garbage + ": no shadow results\n", "3 unreadable lines skipped\n"},
		{"missing file", []string{"-file", missing}, 1, "", "strangler shadow report: open " + missing + ": no such file or directory\n"},
		{"a line over 16MiB", []string{"-file", huge}, 1, "", "strangler shadow report: " + huge + ":2: bufio.Scanner: token too long\n"},
		{"negative top", []string{"-file", file, "-top", "-1"}, 2, "", "strangler shadow report: -top must not be negative\n"},
		{"positional argument", []string{file}, 2, "",
			"usage: strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5]\n"},
		{"unknown flag", []string{"-fil", file}, 2, "", "flag provided but not defined: -fil\n" + flagUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.ShadowReport, tc.args...)
			if code != tc.code || out != tc.stdout || errOut != tc.stderr {
				t.Errorf("exit %d (want %d)\nstderr %q\nwant   %q\ngot:\n%s\nwant:\n%s", code, tc.code, errOut, tc.stderr, out, tc.stdout)
			}
		})
	}
}
