package upstream

import (
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
)

// Selector picks the instance for a request; nil when none is available.
type Selector interface {
	Select(instances []*Instance, c *fiber.Ctx) *Instance
}

// RoundRobin spreads requests evenly over an upstream's instances.
type RoundRobin struct{ next atomic.Uint64 }

// Select returns the next instance in turn.
func (rr *RoundRobin) Select(instances []*Instance, _ *fiber.Ctx) *Instance {
	switch len(instances) {
	case 0:
		return nil
	case 1:
		return instances[0]
	}
	n := rr.next.Add(1) - 1
	return instances[n%uint64(len(instances))]
}
