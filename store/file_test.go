package store_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

func pct(v float64) *float64 { return &v }

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// set replaces the state's overrides with ovs, as one audited change.
func set(ovs ...routing.Override) func(*store.State) ([]store.Event, error) {
	return func(s *store.State) ([]store.Event, error) {
		s.Overrides = nil
		for _, o := range ovs {
			s.SetOverride(o)
		}
		return []store.Event{{Action: "side", By: "t"}}, nil
	}
}

// TestFileStoreRoundTrip: what Update writes, Load reads back; the file
// is JSON with an "overrides" list.
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
			fs := &store.File{Path: filepath.Join(t.TempDir(), "state.json")}
			if _, err := fs.Update(context.Background(), set(tc.ovs...)); err != nil {
				t.Fatal(err)
			}
			got, err := fs.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.Revision != 1 || len(got.Overrides) != len(tc.ovs) || len(tc.ovs) > 0 && !reflect.DeepEqual(got.Overrides, tc.ovs) {
				t.Errorf("Load = %+v, want %+v", got, tc.ovs)
			}
			b, _ := os.ReadFile(fs.Path)
			var doc map[string]any
			if json.Unmarshal(b, &doc) != nil || doc["overrides"] == nil || !strings.HasSuffix(string(b), "}\n") {
				t.Errorf("file:\n%s", b)
			}
		})
	}
}

// TestFileStoreLoad: a missing file is an empty state; anything else that
// cannot be read is an error naming the file.
func TestFileStoreLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	if got, err := (&store.File{Path: filepath.Join(dir, "missing.json")}).Load(ctx); !got.Empty() || got.Revision != 0 || err != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	write(t, garbage, "overrides: yes")
	if _, err := (&store.File{Path: garbage}).Load(ctx); err == nil || !strings.HasPrefix(err.Error(), garbage+": invalid character") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := (&store.File{Path: dir}).Load(ctx); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

// TestFileStoreAtomic: an update replaces the file in one step (a reader
// that opened the old file keeps reading it whole; nobody sees a
// half-written one), leaves no temporary file behind, and an update that
// cannot write leaves the old file as it was.
func TestFileStoreAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	fs := &store.File{Path: filepath.Join(dir, "state.json")}
	first := routing.Override{Route: "courses", Side: "legacy", Reason: "first"}
	if _, err := fs.Update(ctx, set(first)); err != nil {
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
	if _, err := fs.Update(ctx, set(routing.Override{Route: "list", Side: "new", Reason: strings.Repeat("second ", 100)})); err != nil {
		t.Fatal(err)
	}
	kept := make([]byte, len(old)+10)
	n, _ := reader.Read(kept)
	if string(kept[:n]) != string(old) {
		t.Errorf("the file was rewritten in place; a reader of the old one got:\n%s", kept[:n])
	}
	got, err := fs.Load(ctx)
	if err != nil || len(got.Overrides) != 1 || got.Overrides[0].Route != "list" {
		t.Errorf("after the second update, Load = %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only state.json", entries)
	}
	// The path is a directory now: the rename fails; nothing is left.
	blocked := &store.File{Path: filepath.Join(dir, "blocked")}
	if err := os.Mkdir(blocked.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(blocked.Path, "keep"), "x")
	if _, err := blocked.Update(ctx, set(first)); err == nil {
		t.Error("an update over a non-empty directory succeeded")
	}
	if _, err := (&store.File{Path: filepath.Join(dir, "no", "such", "dir", "state.json")}).Update(ctx, set(first)); err == nil {
		t.Error("an update into a missing directory succeeded")
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("failed updates left files behind: %v", entries)
	}
	if b, _ := os.ReadFile(fs.Path); !strings.Contains(string(b), `"route": "list"`) {
		t.Errorf("state.json changed:\n%s", b)
	}
}
