package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, kind, url, prefix, err string
		resync                           time.Duration
	}{
		{name: "default", in: "", kind: "file", url: "file"},
		{name: "file", in: "file", kind: "file", url: "file"},
		{name: "redis", in: "redis://redis:6379/0", kind: "redis", url: "redis://redis:6379/0", prefix: "strangler:", resync: 5 * time.Second},
		{name: "tls and password", in: "rediss://:s3cret@redis:6380/2", kind: "redis", url: "rediss://:xxxxx@redis:6380/2", prefix: "strangler:", resync: 5 * time.Second},
		{name: "own options", in: "redis://redis:6379/0?prefix=shop:&resync=2s&pool_size=5", kind: "redis", url: "redis://redis:6379/0", prefix: "shop:", resync: 2 * time.Second},
		{name: "sentinel", in: "redis://s1:26379/0?master_name=main&addr=s2:26379", kind: "redis", url: "redis://s1:26379/0 (sentinel, master main)", prefix: "strangler:", resync: 5 * time.Second},
		{name: "bad scheme", in: "memcached://x:1", err: `bad store URL scheme "memcached"`},
		{name: "no host", in: "redis:///0", err: "no host"},
		{name: "bad resync", in: "redis://r:1/0?resync=soon", err: `resync="soon"`},
		{name: "unknown go-redis option", in: "redis://:pw@r:1/0?bogus=1", err: "bogus"},
		{name: "bad db", in: "redis://:pw@r:1/x", err: "invalid database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := store.ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("the password is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != tc.kind || c.URL != tc.url || c.Prefix != tc.prefix || c.Resync != tc.resync {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

func TestFileStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "overrides.json")
	// A file written before revisions existed loads as revision 0.
	if err := os.WriteFile(path, []byte(`{"overrides":[{"route":"a","side":"legacy","reason":"r","by":"x","at":"2026-01-01T00:00:00Z"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &store.File{Path: path, AuditKeep: 10}
	ctx := context.Background()
	st, err := f.Load(ctx)
	if err != nil || st.Revision != 0 || len(st.Overrides) != 1 {
		t.Fatalf("old file: %+v %v", st, err)
	}
	// No events: no change, nothing written.
	before, _ := os.ReadFile(path)
	if _, err := f.Update(ctx, func(*store.State) ([]store.Event, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("an update without events rewrote the file")
	}
	for i := range 15 {
		st, err = f.Update(ctx, func(s *store.State) ([]store.Event, error) {
			s.SetBreaker(store.BreakerOverride{Upstream: "u", State: "open", Reason: "r", By: "x"})
			return []store.Event{{Action: "breaker", Upstream: "u", By: "x", Reason: string(rune('a' + i%26))}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if st.Revision != 15 || len(st.Breakers) != 1 || len(st.Overrides) != 1 {
		t.Fatalf("state %+v", st)
	}
	if err := f.Record(ctx, store.Event{Action: "reload", By: "x", Result: "applied"}); err != nil {
		t.Fatal(err)
	}
	all, _ := f.Audit(ctx, store.Query{Limit: 5000})
	if len(all) != 10 || all[0].Action != "reload" || all[1].Revision != 15 {
		t.Fatalf("kept %d events, newest %+v", len(all), all[0])
	}
	page, _ := f.Audit(ctx, store.Query{Limit: 3, Before: all[1].ID, Action: "breaker"})
	if len(page) != 3 || page[0].Revision != 14 {
		t.Fatalf("page %+v", page)
	}
	// A cache is a state with where it came from; a store file is not a
	// cache.
	if _, _, ok, _ := f.ReadCache(); ok {
		t.Fatal("a store file read as a cache")
	}
	c := &store.File{Path: filepath.Join(dir, "cache.json")}
	want := store.State{Revision: 7, Epoch: "e", Overrides: []routing.Override{{Route: "b", Side: "new", Reason: "r", By: "x"}}}
	if err := c.WriteCache(want, "redis://r:1/0", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, info, ok, err := c.ReadCache()
	if !ok || err != nil || got.Revision != 7 || got.Epoch != "e" || len(got.Overrides) != 1 || info.Store != "redis://r:1/0" {
		t.Fatalf("cache %+v %+v %v %v", got, info, ok, err)
	}
}
