package cli_test

import (
	"fmt"
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
	unreadable := func(f string, n int) string { return fmt.Sprintf("%s: %d unreadable lines skipped\n", f, n) }
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings, in order
		stderr string   // exact
	}{
		{"every route", []string{"-file", file}, 0, []string{
			"course-detail  not ready", "course-list    not enough evidence",
			"route course-detail: not ready", "$.items[*].price.currency  2 requests", `"EUR"`, `"eur"`,
			"route course-list: not enough evidence"}, unreadable(file, 2)},
		{"one route", []string{"-file", file, "-route", "course-list"}, 0, []string{"route course-list: not enough evidence"}, unreadable(file, 2)},
		{"top 1", []string{"-file", file, "-top", "1", "-route", "course-detail"}, 0, []string{"$.items[*].price.currency  2 requests"}, unreadable(file, 2)},
		{"a route without results", []string{"-file", file, "-route", "nope"}, 0, []string{file + ": no shadow results for route nope"}, unreadable(file, 2)},
		{"an empty file", []string{"-file", empty}, 0, []string{empty + ": no shadow results"}, ""},
		{"not a results file", []string{"-file", garbage}, 0, []string{garbage + ": no shadow results"}, unreadable(garbage, 3)},
		{"missing file", []string{"-file", missing}, 1, nil, "strangler shadow report: open " + missing + ": no such file or directory\n"},
		{"a line over 16MiB", []string{"-file", huge}, 1, nil, "strangler shadow report: " + huge + ":2: bufio.Scanner: token too long\n"},
		{"top 0", []string{"-file", file, "-top", "0"}, 2, nil, "strangler shadow report: -top must be at least 1\n"},
		{"negative top", []string{"-file", file, "-top", "-1"}, 2, nil, "strangler shadow report: -top must be at least 1\n"},
		{"positional argument", []string{file}, 2, nil,
			"strangler shadow report: unexpected argument \"" + file + "\" (the results file goes after -file)\n" +
				"usage: strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json] [-addr HOST:PORT [-token T]]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.ShadowReport, tc.args...)
			if code != tc.code || errOut != tc.stderr {
				t.Fatalf("exit %d (want %d)\nstderr %q\nwant   %q\nstdout:\n%s", code, tc.code, errOut, tc.stderr, out)
			}
			rest := out
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", want, out)
				}
				rest = rest[i+len(want):]
			}
		})
	}
	if code, _, errOut := runCmd(cli.ShadowReport, "-fil", file); code != 2 || !strings.HasPrefix(errOut, "flag provided but not defined: -fil; did you mean -file?\n") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
}
