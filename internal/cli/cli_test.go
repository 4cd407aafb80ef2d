package cli

import "testing"

func TestSuggest(t *testing.T) {
	t.Parallel()
	cmds := []string{"serve", "validate", "route", "demo", "shadow", "ctl", "diff", "apply", "version", "help"}
	for _, c := range []struct{ word, want string }{
		{"serv", "serve"},        // deletion
		{"servee", "serve"},      // insertion
		{"clt", "ctl"},           // swapped neighbours
		{"vlaidate", "validate"}, // swapped neighbours in a long word
		{"valdiat", "validate"},  // two edits, long word
		{"SERVE", "serve"},       // case
		{"--diff", "diff"},       // dashes
		{"val", "validate"},      // a prefix of exactly one
		{"d", ""},                // too short to guess
		{"de", "demo"},           // prefix
		{"frobnicate", ""},       // nothing close
		{"xyz", ""},
	} {
		if got := Suggest(c.word, cmds); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
	// Ties name every candidate.
	if got := Suggest("rest", []string{"test", "best"}); got != "test or best" {
		t.Errorf("tie = %q", got)
	}
}

func TestDialable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		":9901":          "127.0.0.1:9901",
		"0.0.0.0:9901":   "127.0.0.1:9901",
		"[::]:9901":      "[::1]:9901",
		"10.0.0.5:9901":  "10.0.0.5:9901",
		"127.0.0.1:9901": "127.0.0.1:9901",
		"not an address": "not an address",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}
