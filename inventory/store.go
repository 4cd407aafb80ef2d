package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/strangler/strangler/internal/atomicfile"
)

// Store keeps the inventory across restarts: the gateway restores what
// Load returns at start and saves a Snapshot periodically and at shutdown.
//
// FileStore serves one gateway. A fleet store (a shared store such as the
// Redis one of issue 16) saves each replica's snapshot under its replica
// name (Snapshot.Replica) and also implements Peers, so that every
// replica's report merges the others' (Merge: counters add, templates
// collapse on the union of what the replicas saw).
type Store interface {
	// Load returns the saved snapshot; nil and no error when there is none.
	Load() (*Snapshot, error)
	// Save must be durable when it returns.
	Save(*Snapshot) error
}

// Peers is what a fleet store adds to Store: the latest snapshots the
// other replicas saved.
type Peers interface {
	Peers() ([]*Snapshot, error)
}

// FileStore keeps the snapshot in a JSON file, replaced atomically.
type FileStore struct{ Path string }

// Load reads the file; a missing file is no snapshot.
func (f FileStore) Load() (*Snapshot, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v", f.Path, err)
	}
	return &s, nil
}

// Save writes the file durably.
func (f FileStore) Save(s *Snapshot) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(f.Path, ".inventory-*", append(b, '\n'))
}
