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
		{name: "env token", env: "env-token-0123456789", want: "map[env-token-0123456789:{admin admin}]"},
		{name: "env token too short", env: "short", wantErr: "STRANGLER_ADMIN_TOKEN is shorter than 16 characters"},
		{name: "env token of 15", env: tok[:15], wantErr: "STRANGLER_ADMIN_TOKEN is shorter than 16 characters"},
		{name: "file", file: "# on-call tokens\n\nalice " + tok + "\n  bob   bob-token-0123456789  \n",
			want: "map[0123456789abcdef:{alice admin} bob-token-0123456789:{bob admin}]"},
		{name: "roles", file: "alice " + tok + " admin\ndash\tdash-token-0123456789\tread\n",
			want: "map[0123456789abcdef:{alice admin} dash-token-0123456789:{dash read}]"},
		{name: "file and env", env: "env-token-0123456789", file: "alice " + tok + "\n",
			want: "map[0123456789abcdef:{alice admin} env-token-0123456789:{admin admin}]"},
		{name: "line without a token", file: "# header\nalice " + tok + "\nbob\n", wantErr: "{{file}}:3: want \"name token\" or \"name token read\" with a token of at least 16 characters"},
		{name: "short token", file: "alice short\n", wantErr: "{{file}}:1: want \"name token\" or \"name token read\" with a token of at least 16 characters"},
		{name: "short token with a role", file: "alice short read\n", wantErr: "{{file}}:1: want \"name token\" or \"name token read\" with a token of at least 16 characters"},
		{name: "unknown role", file: "alice " + tok + " write\n", wantErr: "{{file}}:1: unknown role \"write\": admin or read"},
		{name: "too many fields", file: "alice " + tok + " read extra\n", wantErr: "{{file}}:1: want \"name token\" or \"name token read\" with a token of at least 16 characters"},
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
func fmtMap(m admin.Tokens) string { return fmt.Sprint(m) }
