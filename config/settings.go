package config

import (
	"net/netip"
	"time"
)

// ServerSettings is the server section compiled: every default applied,
// every duration and size parsed. Package gateway's compile fills it (the
// defaults are documented on the ServerSpec fields); the listeners and the
// proxy read it.
type ServerSettings struct {
	Listen, OperatorListen string
	TrustedProxies         []netip.Prefix
	ExposeRoute            bool
	PublicHealth           bool
	AccessLog              string

	ReadHeaderTimeout, ReadBodyTimeout, WriteTimeout, IdleTimeout time.Duration
	ShutdownDelay, DrainTimeout                                   time.Duration

	MaxHeaderBytes, MaxURIBytes int
	MaxHeaderCount              int
	MaxBodyBytes                int64
	MaxBufferedBytes            int64
	MaxReplayBytes              int64
	MaxConnections              int
	MaxConnectionsPerIP         int

	AdminTokensFile string
	AdminReadAuth   bool
	AdminDataAuth   bool
	AdminStateFile  string
	ReloadWatch     time.Duration
	// Store is the store URL ("file" for the local file).
	Store string
}

// Trusted reports whether a peer is one of the trusted proxies.
func (s *ServerSettings) Trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// InventorySettings is the inventory section compiled (defaults applied;
// documented on InventorySpec).
type InventorySettings struct {
	Enabled      bool
	MaxEndpoints int
	// StateFile is "" when the inventory is not persisted.
	StateFile string
	SaveEvery time.Duration
	Redact    []string
}
