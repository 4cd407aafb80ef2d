package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Documents: what replicas tell each other that is not state (no
// revision, no audit event): each replica's own document of a kind (the
// migration controller's per-route counters, which the deciding replica
// sums), and named documents one replica writes for the others (the
// deciding replica's last evaluation).

// PutReplicaDoc stores this replica's document of a kind, replacing its
// previous one; Close removes it.
func (r *Redis) PutReplicaDoc(ctx context.Context, kind string, doc []byte) error {
	r.mu.Lock()
	if r.docKinds == nil {
		r.docKinds = map[string]bool{}
	}
	r.docKinds[kind] = true
	r.mu.Unlock()
	ctx, cancel := opContext(ctx)
	defer cancel()
	if err := r.c.HSet(ctx, r.key("docs:"+kind), r.o.Replica, doc).Err(); err != nil {
		r.count("docs")
		return wrapUnavailable(err)
	}
	return nil
}

// ReplicaDocs returns every replica's document of a kind, by replica.
func (r *Redis) ReplicaDocs(ctx context.Context, kind string) (map[string][]byte, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	m, err := r.c.HGetAll(ctx, r.key("docs:"+kind)).Result()
	if err != nil {
		r.count("docs")
		return nil, wrapUnavailable(err)
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, nil
}

// DeleteReplicaDoc removes another replica's document of a kind (one gone
// for long).
func (r *Redis) DeleteReplicaDoc(ctx context.Context, kind, replica string) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	if err := r.c.HDel(ctx, r.key("docs:"+kind), replica).Err(); err != nil {
		return wrapUnavailable(err)
	}
	return nil
}

// PutDoc stores a named document for ttl (0: no expiry).
func (r *Redis) PutDoc(ctx context.Context, name string, doc []byte, ttl time.Duration) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	if err := r.c.Set(ctx, r.key("doc:"+name), doc, ttl).Err(); err != nil {
		r.count("docs")
		return wrapUnavailable(err)
	}
	return nil
}

// GetDoc returns a named document, nil when there is none.
func (r *Redis) GetDoc(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	b, err := r.c.Get(ctx, r.key("doc:"+name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		r.count("docs")
		return nil, wrapUnavailable(err)
	}
	return b, nil
}
