package store

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLease is a lease kept in Redis: SET NX with a TTL, renewed by its
// holder every third of the TTL. A replica believes it holds the lease
// until a fifth of the TTL before it would lapse, so two replicas never
// both believe it across a renewal they cannot make (clock rates may
// differ a little, not by a fifth). Each acquisition gets a fencing token
// (Token) that only grows: a decision written to the store may carry it.
type RedisLease struct {
	r    *Redis
	name string
	ttl  time.Duration

	held       atomic.Bool
	validUntil atomic.Int64
	token      atomic.Int64
}

// acquireScript takes a free lease or renews one we hold: it returns the
// token, or 0 when another replica holds the lease.
var acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])
`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lease returns the named lease; Run it to take part.
func (r *Redis) Lease(name string, ttl time.Duration) *RedisLease {
	l := &RedisLease{r: r, name: name, ttl: ttl}
	r.mu.Lock()
	r.leases = append(r.leases, l)
	r.mu.Unlock()
	return l
}

// Held reports whether this replica holds the lease now.
func (l *RedisLease) Held() bool {
	return l.held.Load() && time.Now().UnixNano() < l.validUntil.Load()
}

// Token is the fencing token of the current hold (0 when not held).
func (l *RedisLease) Token() int64 {
	if !l.Held() {
		return 0
	}
	return l.token.Load()
}

// Holder returns the replica that holds the lease ("" when none).
func (l *RedisLease) Holder(ctx context.Context) (string, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	v, err := l.r.c.Get(ctx, l.keys()[0]).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", wrapUnavailable(err)
	}
	return v, nil
}

func (l *RedisLease) keys() []string {
	k := l.r.key("lease:" + l.name)
	return []string{k, k + ":token"}
}

// Run takes and renews the lease until ctx ends, then releases it.
func (l *RedisLease) Run(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		l.try(ctx)
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l.release(rctx)
			cancel()
			return
		case <-t.C:
		}
	}
}

func (l *RedisLease) try(ctx context.Context) {
	start := time.Now()
	cctx, cancel := opContext(ctx)
	tok, err := acquireScript.Run(cctx, l.r.c, l.keys(), l.r.o.Replica, l.ttl.Milliseconds()).Int64()
	cancel()
	was := l.held.Load()
	if err != nil && ctx.Err() == nil {
		l.r.count("lease")
	}
	if err != nil || tok == 0 {
		l.set(false)
		if was {
			l.r.log.Info("lease lost", "lease", l.name, "err", err)
		}
		return
	}
	l.validUntil.Store(start.Add(l.ttl - l.ttl/5).UnixNano())
	l.token.Store(tok)
	l.set(true)
	if !was {
		l.r.log.Info("lease acquired", "lease", l.name, "token", tok)
	}
}

func (l *RedisLease) set(held bool) {
	l.held.Store(held)
	if m := l.r.o.Metrics; m != nil {
		v := 0.0
		if held {
			v = 1
		}
		m.LeaseHeld.WithLabelValues(l.name).Set(v)
	}
}

func (l *RedisLease) release(ctx context.Context) {
	if !l.held.Load() {
		return
	}
	l.set(false)
	_ = releaseScript.Run(ctx, l.r.c, l.keys()[:1], l.r.o.Replica).Err()
}
