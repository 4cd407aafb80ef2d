package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/strangler/strangler/inventory"
)

// InventoryTTL is how long a replica's inventory stays in the fleet's view
// after its last save: a replica that is gone for good (its pod replaced)
// still counts until then.
const InventoryTTL = 30 * 24 * time.Hour

// InventoryPool keeps each replica's legacy inventory in Redis: its
// snapshot under its replica name, replaced at every save, so every
// replica's report merges the others' (inventory.Merge). Like the shadow
// evidence it is statistics, not a decision: a Redis that loses it gets it
// back at the replicas' next saves.
type InventoryPool struct{ r *Redis }

// InventoryPool returns the store's inventory pool.
func (r *Redis) InventoryPool() *InventoryPool { return &InventoryPool{r: r} }

func (p *InventoryPool) key(replica string) string { return p.r.key("inventory:" + replica) }
func (p *InventoryPool) setKey() string            { return p.r.key("inventory:replicas") }

// Save stores this replica's snapshot. The snapshots of adopted replicas
// (earlier names of this one whose counts it restored, see Adopt) leave
// the pool in the same transaction, so no reader ever counts both.
func (p *InventoryPool) Save(ctx context.Context, s *inventory.Snapshot, adopted ...string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	replica := p.r.Replica()
	_, err = p.r.c.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		for _, a := range adopted {
			if a != "" && a != replica {
				pp.Del(ctx, p.key(a))
				pp.SRem(ctx, p.setKey(), a)
			}
		}
		pp.Set(ctx, p.key(replica), b, InventoryTTL)
		pp.SAdd(ctx, p.setKey(), replica)
		return nil
	})
	if err != nil {
		p.r.count("inventory")
		return wrapUnavailable(err)
	}
	return nil
}

// Saved reports whether the pool holds this replica's snapshot: false
// after the store lost its data, or when the snapshot expired (a replica
// that observed nothing new for InventoryTTL), so that the replica saves
// it again although nothing changed.
func (p *InventoryPool) Saved(ctx context.Context) (bool, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	n, err := p.r.c.Exists(ctx, p.key(p.r.Replica())).Result()
	if err != nil {
		p.r.count("inventory")
		return false, wrapUnavailable(err)
	}
	return n == 1, nil
}

// Peers returns the other replicas' snapshots (those that expired are
// forgotten).
func (p *InventoryPool) Peers(ctx context.Context) ([]*inventory.Snapshot, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	c := p.r.c
	names, err := c.SMembers(ctx, p.setKey()).Result()
	if err != nil {
		p.r.count("inventory")
		return nil, wrapUnavailable(err)
	}
	me := p.r.Replica()
	var others []string
	for _, n := range names {
		if n != me {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return nil, nil
	}
	keys := make([]string, len(others))
	for i, n := range others {
		keys[i] = p.key(n)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		p.r.count("inventory")
		return nil, wrapUnavailable(err)
	}
	var out []*inventory.Snapshot
	var gone []any
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			gone = append(gone, others[i])
			continue
		}
		var snap inventory.Snapshot
		if json.Unmarshal([]byte(s), &snap) == nil {
			out = append(out, &snap)
		}
	}
	if len(gone) > 0 {
		_ = c.SRem(ctx, p.setKey(), gone...).Err()
	}
	return out, nil
}

// Adopt removes another replica's snapshot from the pool: this replica
// restored it (a restart under a new name, the same state file) and
// carries its counts from now on, so they must not count twice.
func (p *InventoryPool) Adopt(ctx context.Context, replica string) error {
	if replica == "" || replica == p.r.Replica() {
		return nil
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	_, err := p.r.c.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		pp.Del(ctx, p.key(replica))
		pp.SRem(ctx, p.setKey(), replica)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		p.r.count("inventory")
		return wrapUnavailable(err)
	}
	return nil
}
