package admin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/routing"
)

// TestFileStoreRoundTrip: what Save writes, Load reads back, in the
// documented {"overrides": [...]} shape.
func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ovs  []routing.Override
	}{
		{"none", nil},
		{"side and canary", []routing.Override{
			{Route: "courses", Side: "legacy", Reason: "500s", By: "alice", At: at, Expires: at.Add(time.Hour)},
			{Route: "list", Percent: pct(12.5), Reason: "ramp", By: "bob", At: at},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := admin.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
			if err := fs.Save(tc.ovs); err != nil {
				t.Fatal(err)
			}
			got, err := fs.Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.ovs) || len(got) > 0 && !reflect.DeepEqual(got, tc.ovs) {
				t.Errorf("Load = %+v, want %+v", got, tc.ovs)
			}
			b, _ := os.ReadFile(fs.Path)
			if !strings.HasPrefix(string(b), "{\n  \"overrides\": ") || !strings.HasSuffix(string(b), "}\n") {
				t.Errorf("file:\n%s", b)
			}
		})
	}
}

// TestFileStoreLoad: a missing file is no overrides; anything else that
// cannot be read is an error naming the file.
func TestFileStoreLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got, err := (admin.FileStore{Path: filepath.Join(dir, "missing.json")}).Load(); got != nil || err != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	write(t, garbage, "overrides: yes")
	if _, err := (admin.FileStore{Path: garbage}).Load(); err == nil || !strings.HasPrefix(err.Error(), garbage+": invalid character") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := (admin.FileStore{Path: dir}).Load(); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

// TestFileStoreAtomic: Save replaces the file in one step (a reader that
// opened the old file keeps reading it whole; nobody sees a half-written
// one), leaves no temporary file behind, and a Save that cannot write
// leaves the old file as it was.
func TestFileStoreAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs := admin.FileStore{Path: filepath.Join(dir, "state.json")}
	first := []routing.Override{{Route: "courses", Side: "legacy", Reason: "first"}}
	if err := fs.Save(first); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(fs.Path)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(fs.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	if err := fs.Save([]routing.Override{{Route: "list", Side: "new", Reason: strings.Repeat("second ", 100)}}); err != nil {
		t.Fatal(err)
	}
	kept := make([]byte, len(old)+10)
	n, _ := reader.Read(kept)
	if string(kept[:n]) != string(old) {
		t.Errorf("the file was rewritten in place; a reader of the old one got:\n%s", kept[:n])
	}
	got, err := fs.Load()
	if err != nil || len(got) != 1 || got[0].Route != "list" {
		t.Errorf("after the second Save, Load = %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only state.json", names)
	}

	// The path is a directory now: the rename fails; nothing is left.
	blocked := admin.FileStore{Path: filepath.Join(dir, "blocked")}
	if err := os.Mkdir(blocked.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(blocked.Path, "keep"), "x")
	if err := blocked.Save(first); err == nil {
		t.Error("Save over a non-empty directory succeeded")
	}
	if err := (admin.FileStore{Path: filepath.Join(dir, "no", "such", "dir", "state.json")}).Save(first); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("failed saves left files behind: %v", entries)
	}
	if b, _ := os.ReadFile(fs.Path); !strings.Contains(string(b), `"route": "list"`) {
		t.Errorf("state.json changed:\n%s", b)
	}
}

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
