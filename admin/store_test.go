package admin_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/admin"
)

// TestLoadTokens: the environment token is named "admin"; the tokens
// file has "name token" lines and # comments; malformed lines and short
// tokens are refused with file:line. Not parallel: it sets the
// environment.
func TestLoadTokens(t *testing.T) {
	const tok = "0123456789abcdef"
	for _, tc := range []struct {
		name, env, file string // file "" means no file; "-" a missing one
		want            string
		wantErr         string
	}{
		{name: "nothing", want: "map[]"},
		{name: "env token", env: "env-token-0123456789", want: "map[env-token-0123456789:admin]"},
		{name: "env token too short", env: "short", wantErr: "STRANGLER_ADMIN_TOKEN is shorter than 16 characters"},
		{name: "env token of 15", env: tok[:15], wantErr: "STRANGLER_ADMIN_TOKEN is shorter than 16 characters"},
		{name: "file", file: "# on-call tokens\n\nalice " + tok + "\n  bob   bob-token-0123456789  \n",
			want: "map[0123456789abcdef:alice bob-token-0123456789:bob]"},
		{name: "file and env", env: "env-token-0123456789", file: "alice " + tok + "\n",
			want: "map[0123456789abcdef:alice env-token-0123456789:admin]"},
		{name: "line without a token", file: "# header\nalice " + tok + "\nbob\n", wantErr: "{{file}}:3: want \"name token\" with a token of at least 16 characters"},
		{name: "short token", file: "alice short\n", wantErr: "{{file}}:1: want \"name token\" with a token of at least 16 characters"},
		{name: "missing file", file: "-", wantErr: "admin tokens: open {{file}}: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STRANGLER_ADMIN_TOKEN", tc.env)
			path := ""
			switch tc.file {
			case "":
			case "-":
				path = filepath.Join(t.TempDir(), "tokens")
			default:
				path = filepath.Join(t.TempDir(), "tokens")
				write(t, path, tc.file)
			}
			got, err := admin.LoadTokens(path)
			if tc.wantErr != "" {
				want := strings.ReplaceAll(tc.wantErr, "{{file}}", path)
				if err == nil || err.Error() != want {
					t.Errorf("error\n got: %v\nwant: %s", err, want)
				}
				if got != nil {
					t.Errorf("tokens returned with an error: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmtMap(got); s != tc.want {
				t.Errorf("tokens = %s, want %s", s, tc.want)
			}
		})
	}
}

// fmtMap prints a map with sorted keys.
func fmtMap(m map[string]string) string { return fmt.Sprint(m) }
