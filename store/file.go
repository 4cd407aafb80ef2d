package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/strangler/strangler/routing"
)

// fileAuditKeep is how many audit events the file store keeps.
const fileAuditKeep = 1000

// File keeps the state, and the last audit events, in one JSON file
// replaced atomically (temp file, fsync, rename, fsync of the directory):
// the store of a single replica. A fleet's replicas use it as their local
// cache of the shared state (WriteCache, ReadCache).
type File struct {
	Path string
	// AuditKeep is how many audit events the file keeps (default 1000).
	AuditKeep int
	mu        sync.Mutex
	cleaned   bool
}

// fileDoc is the file's content. Files written before revisions existed
// hold only "overrides"; they load as revision 0.
type fileDoc struct {
	State
	Audit []Event `json:"audit,omitempty"`
	// Cache is set when the file is a fleet replica's cache.
	Cache *CacheInfo `json:"cache,omitempty"`
}

// CacheInfo says where and when a cached state came from.
type CacheInfo struct {
	Store   string    `json:"store"`
	SavedAt time.Time `json:"saved_at"`
}

// Kind is "file".
func (f *File) Kind() string { return "file" }

// Where is the file's path.
func (f *File) Where() string { return f.Path }

// Close does nothing.
func (f *File) Close() error { return nil }

// cleanTemps removes, once, the temporary files of writes a crash
// interrupted (".overrides-*" next to the file): no write is running
// before the first read.
func (f *File) cleanTemps() {
	if f.cleaned {
		return
	}
	f.cleaned = true
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(f.Path), ".overrides-*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

func (f *File) read() (fileDoc, error) {
	f.cleanTemps()
	var doc fileDoc
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("%s: %v", f.Path, err)
	}
	return doc, nil
}

// Load reads the file; a missing file is an empty state at revision 0.
func (f *File) Load(context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	return doc.State, err
}

// Update changes the state and appends its events, durably.
func (f *File) Update(_ context.Context, change func(*State) ([]Event, error)) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	if err != nil {
		return State{}, err
	}
	next := doc.State.Clone()
	events, err := change(&next)
	if err != nil || len(events) == 0 {
		return doc.State, err
	}
	next.Revision = doc.Revision + 1
	next.Seeded = false
	doc.State = next
	f.append(&doc, events, next.Revision)
	if err := f.write(doc); err != nil {
		return State{}, err
	}
	return next, nil
}

func (f *File) append(doc *fileDoc, events []Event, rev int64) {
	seq := int64(0)
	if n := len(doc.Audit); n > 0 {
		seq, _ = strconv.ParseInt(doc.Audit[n-1].ID, 10, 64)
	}
	for _, e := range events {
		seq++
		e.ID = strconv.FormatInt(seq, 10)
		if rev > 0 {
			e.Revision = rev
		}
		doc.Audit = append(doc.Audit, e)
	}
	keep := f.AuditKeep
	if keep <= 0 {
		keep = fileAuditKeep
	}
	if over := len(doc.Audit) - keep; over > 0 {
		doc.Audit = append([]Event(nil), doc.Audit[over:]...)
	}
}

// Put writes s, the state a single replica computed, and appends events,
// durably. A file that cannot be read is not overwritten (its audit trail
// would be lost): Put fails.
func (f *File) Put(_ context.Context, s State, events []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	if err != nil {
		return err
	}
	doc.State = s
	f.append(&doc, events, 0)
	return f.write(doc)
}

// Record appends events, durably.
func (f *File) Record(_ context.Context, events ...Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	if err != nil {
		return err
	}
	f.append(&doc, events, 0)
	return f.write(doc)
}

// Audit returns the kept events, newest first.
func (f *File) Audit(_ context.Context, q Query) ([]Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	if err != nil {
		return nil, err
	}
	before := int64(-1)
	if q.Before != "" {
		if before, err = strconv.ParseInt(q.Before, 10, 64); err != nil {
			return nil, fmt.Errorf("bad event id %q", q.Before)
		}
	}
	out := []Event{}
	for i := len(doc.Audit) - 1; i >= 0 && len(out) < q.limit(); i-- {
		e := doc.Audit[i]
		if before >= 0 {
			if id, _ := strconv.ParseInt(e.ID, 10, 64); id >= before {
				continue
			}
		}
		if q.match(&e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// WriteCache saves a fleet replica's applied state, durably.
func (f *File) WriteCache(s State, from string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.write(fileDoc{State: s, Cache: &CacheInfo{Store: from, SavedAt: now.UTC()}})
}

// ReadCache returns the cached state; ok is false when there is none (a
// missing file, or a file that is not a cache).
func (f *File) ReadCache() (s State, info CacheInfo, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, err := f.read()
	if err != nil || doc.Cache == nil {
		return State{}, CacheInfo{}, false, err
	}
	return doc.State, *doc.Cache, true, nil
}

func (f *File) write(doc fileDoc) error {
	if doc.Overrides == nil {
		doc.Overrides = []routing.Override{}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, ".overrides-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
