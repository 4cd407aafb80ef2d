package gateway

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
)

const (
	defaultInventoryMax  = 10000
	defaultInventoryFile = "strangler-inventory.json"
	defaultInventorySave = time.Minute
)

// compileInventory applies the inventory section's defaults. The state
// file defaults to the overrides' directory: one place for the gateway's
// state.
func (c *compiler) compileInventory(s config.InventorySpec, adminStateFile string) config.InventorySettings {
	o := config.InventorySettings{Enabled: s.Enabled == nil || *s.Enabled, MaxEndpoints: s.MaxEndpoints}
	switch {
	case s.MaxEndpoints == 0:
		o.MaxEndpoints = defaultInventoryMax
	case s.MaxEndpoints < 0:
		c.errorf("inventory.max_endpoints", "must be positive")
	}
	switch s.StateFile {
	case "":
		o.StateFile = filepath.Join(filepath.Dir(adminStateFile), defaultInventoryFile)
	case "off":
	default:
		o.StateFile = s.StateFile
	}
	o.SaveEvery = c.ix.Duration("inventory.save_every", s.SaveEvery, defaultInventorySave, false)
	for i, k := range s.Redact {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "&= ") {
			c.errorf(fmt.Sprintf("inventory.redact[%d]", i), "bad query key %q: a name as it appears before = in a query", k)
			continue
		}
		o.Redact = append(o.Redact, k)
	}
	return o
}
