package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"
	"github.com/strangler/strangler/shadow"
)

// ShadowPool pools the fleet's shadow results in Redis (shadow.Shared):
// one tally per route (a JSON document merged with an optimistic
// transaction) and a capped list of recent mismatches per route. The
// evidence is statistics, not decisions: a Redis that loses it starts
// counting again.
type ShadowPool struct{ r *Redis }

// ShadowPool returns the store's shadow pool.
func (r *Redis) ShadowPool() *ShadowPool { return &ShadowPool{r: r} }

func (p *ShadowPool) tallyKey(route string) string  { return p.r.key("shadow:tally:" + route) }
func (p *ShadowPool) recentKey(route string) string { return p.r.key("shadow:recent:" + route) }

// Push implements shadow.Shared: the tallies and mismatches land in one
// transaction (all or nothing, retried when another replica pushed in
// between), so a failed push can be pushed again without counting twice.
func (p *ShadowPool) Push(ctx context.Context, tallies map[string]*shadow.Tally, mismatches []shadow.Result) error {
	c := p.r.c
	var keys []string
	for route := range tallies {
		keys = append(keys, p.tallyKey(route))
	}
	push := func(tx *redis.Tx) error {
		merged := map[string][]byte{}
		for route, delta := range tallies {
			cur := shadow.NewTally()
			b, err := tx.Get(ctx, p.tallyKey(route)).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				if json.Unmarshal(b, cur) != nil {
					cur = shadow.NewTally() // unreadable: start again
				}
			}
			cur.Merge(delta)
			nb, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			merged[route] = nb
		}
		_, err := tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
			routes := map[string]bool{}
			for route, b := range merged {
				pp.Set(ctx, p.tallyKey(route), b, 0)
				routes[route] = true
			}
			for _, m := range mismatches {
				b, err := json.Marshal(m)
				if err != nil {
					continue
				}
				pp.RPush(ctx, p.recentKey(m.Route), b)
				routes[m.Route] = true
			}
			for route := range routes {
				pp.LTrim(ctx, p.recentKey(route), -1000, -1)
				pp.SAdd(ctx, p.r.key("shadow:routes"), route)
			}
			return nil
		})
		return err
	}
	var err error
	for range 10 {
		if err = c.Watch(ctx, push, keys...); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		p.r.count("shadow")
		return wrapUnavailable(err)
	}
	return nil
}

// Pull implements shadow.Shared.
func (p *ShadowPool) Pull(ctx context.Context, recent int) (map[string]*shadow.Tally, map[string][]shadow.Result, error) {
	c := p.r.c
	routes, err := c.SMembers(ctx, p.r.key("shadow:routes")).Result()
	if err != nil {
		p.r.count("shadow")
		return nil, nil, wrapUnavailable(err)
	}
	pipe := c.Pipeline()
	gets := make([]*redis.StringCmd, len(routes))
	lists := make([]*redis.StringSliceCmd, len(routes))
	for i, route := range routes {
		gets[i] = pipe.Get(ctx, p.tallyKey(route))
		lists[i] = pipe.LRange(ctx, p.recentKey(route), int64(-recent), -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		p.r.count("shadow")
		return nil, nil, wrapUnavailable(err)
	}
	tallies := map[string]*shadow.Tally{}
	mis := map[string][]shadow.Result{}
	for i, route := range routes {
		if b, err := gets[i].Bytes(); err == nil {
			t := shadow.NewTally()
			if json.Unmarshal(b, t) == nil {
				tallies[route] = t
			}
		}
		for _, s := range lists[i].Val() {
			var r shadow.Result
			if json.Unmarshal([]byte(s), &r) == nil {
				mis[route] = append(mis[route], r)
			}
		}
	}
	return tallies, mis, nil
}
