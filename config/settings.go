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

	// TLS is HTTPS on the public listener, nil when off.
	TLS *TLSSettings
	// OperatorTLS is HTTPS on the operator listener, nil when off.
	OperatorTLS *OperatorTLSSettings
}

// TLSSettings is the tls section compiled.
type TLSSettings struct {
	Certificates     []CertPair
	MinVersion       uint16
	Reload           time.Duration
	HandshakeTimeout time.Duration
	HSTS             []HSTSRule
}

// CertPair names a certificate file and its key file.
type CertPair struct{ Cert, Key string }

// HSTSRule is a Strict-Transport-Security header value for some hosts
// (lower case, "*." wildcards).
type HSTSRule struct {
	Hosts  []string
	Header string
}

// OperatorTLSSettings is the operator_tls section compiled.
type OperatorTLSSettings struct {
	Cert CertPair
	// ClientCA is the client CA bundle file, "" when client certificates
	// are not asked for; AdminOnly limits the requirement to /admin/.
	ClientCA  string
	AdminOnly bool
	Reload    time.Duration
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
