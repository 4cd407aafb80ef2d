package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strangler/strangler/internal/atomicfile"
	"github.com/strangler/strangler/routing"
)

// Store persists overrides. The file store is the single-replica
// default; a shared store (Redis, etcd, the Kubernetes API) can replace it
// so that every replica flips together.
type Store interface {
	Load() ([]routing.Override, error)
	// Save must be durable when it returns.
	Save([]routing.Override) error
}

// FileStore keeps overrides in a JSON file, replaced atomically (temp file,
// fsync, rename, fsync of the directory).
type FileStore struct{ Path string }

// Load reads the file; a missing file is no overrides. It first removes
// the temporary files a save interrupted by a crash left next to it
// (".overrides-*"): no save is running before the first Load.
func (f FileStore) Load() ([]routing.Override, error) {
	f.cleanTemps()
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Overrides []routing.Override `json:"overrides"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", f.Path, err)
	}
	return doc.Overrides, nil
}

// Save writes the file durably.
func (f FileStore) Save(ovs []routing.Override) error {
	b, err := json.MarshalIndent(struct {
		Overrides []routing.Override `json:"overrides"`
	}{ovs}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(f.Path, ".overrides-*", append(b, '\n'))
}

// cleanTemps removes leftover temporary files of interrupted saves.
func (f FileStore) cleanTemps() {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(f.Path), ".overrides-*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}
