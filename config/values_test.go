package config

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

// valuesIndex returns an index over a small file so that the parsers'
// problems have a position: every value sits at line 1 column 6 of its
// key "v".
func valuesIndex(t *testing.T) *Index {
	t.Helper()
	_, ix, err := Decode("routes.yaml", []byte("legacy: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// problem returns the one problem ix holds, or "" when it holds none.
func problem(t *testing.T, ix *Index) string {
	t.Helper()
	switch ix.Len() {
	case 0:
		return ""
	case 1:
		return ix.Problems()[0].Error()
	}
	t.Fatalf("several problems: %v", ix.Problems())
	return ""
}

func TestDuration(t *testing.T) {
	t.Parallel()
	const def = 7 * time.Second
	for _, tc := range []struct {
		name, raw string
		allowZero bool
		want      time.Duration
		err       string
	}{
		{"unset is the default", "", false, def, ""},
		{"milliseconds", "500ms", false, 500 * time.Millisecond, ""},
		{"minutes", "2m", false, 2 * time.Minute, ""},
		{"compound", "1m30s", false, 90 * time.Second, ""},
		{"zero allowed", "0s", true, 0, ""},
		{"zero refused", "0s", false, def,
			`routes.yaml:1:9: legacy: bad duration "0s": must be positive`},
		{"negative refused", "-1s", true, def,
			`routes.yaml:1:9: legacy: bad duration "-1s": must not be negative`},
		{"negative, zero not allowed", "-1s", false, def,
			`routes.yaml:1:9: legacy: bad duration "-1s": must be positive`},
		{"no unit", "30", false, def,
			`routes.yaml:1:9: legacy: bad duration "30": use a number with a unit, like 500ms, 5s or 2m`},
		{"garbage", "soon", true, def,
			`routes.yaml:1:9: legacy: bad duration "soon": use a number with a unit, like 500ms, 5s or 2m`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := valuesIndex(t)
			if got := ix.Duration("legacy", tc.raw, def, tc.allowZero); got != tc.want {
				t.Errorf("Duration(%q) = %v, want %v", tc.raw, got, tc.want)
			}
			if got := problem(t, ix); got != tc.err {
				t.Errorf("problem\n got: %s\nwant: %s", got, tc.err)
			}
		})
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	const def = 1234
	for _, tc := range []struct {
		name, raw string
		unlimited bool
		want      int64
		err       string
	}{
		{"unset is the default", "", false, def, ""},
		{"bytes", "512", false, 512, ""},
		{"B", "512B", false, 512, ""},
		{"zero", "0", false, 0, ""},
		{"KiB", "16KiB", false, 16 << 10, ""},
		{"MiB", "10MiB", false, 10 << 20, ""},
		{"GiB", "2GiB", false, 2 << 30, ""},
		{"TiB", "1TiB", false, 1 << 40, ""},
		{"KB is decimal", "16KB", false, 16000, ""},
		{"MB", "3MB", false, 3e6, ""},
		{"GB", "1GB", false, 1e9, ""},
		{"space before the unit", "64 KiB", false, 64 << 10, ""},
		{"unlimited allowed", "unlimited", true, -1, ""},
		{"unlimited refused", "unlimited", false, def,
			`routes.yaml:1:9: legacy: bad size "unlimited": this limit cannot be unlimited`},
		{"lower case unit", "10mib", false, def,
			`routes.yaml:1:9: legacy: bad size "10mib": use bytes or a unit, like 512, 16KiB, 10MiB or 2GiB`},
		{"negative", "-1", true, def,
			`routes.yaml:1:9: legacy: bad size "-1": use bytes or a unit, like 512, 16KiB, 10MiB or 2GiB`},
		{"fraction", "1.5MiB", false, def,
			`routes.yaml:1:9: legacy: bad size "1.5MiB": use bytes or a unit, like 512, 16KiB, 10MiB or 2GiB`},
		{"overflows int64", "99999999999999999999", false, def,
			`routes.yaml:1:9: legacy: bad size "99999999999999999999": too large`},
		{"overflows with its unit", "9000000TiB", false, def,
			`routes.yaml:1:9: legacy: bad size "9000000TiB": too large`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := valuesIndex(t)
			if got := ix.Size("legacy", tc.raw, def, tc.unlimited); got != tc.want {
				t.Errorf("Size(%q) = %d, want %d", tc.raw, got, tc.want)
			}
			if got := problem(t, ix); got != tc.err {
				t.Errorf("problem\n got: %s\nwant: %s", got, tc.err)
			}
		})
	}
}

func TestShare(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		in   *float64
		want float64
		err  string
	}{
		{"unset is the default", nil, 42, ""},
		{"zero", f(0), 0, ""},
		{"fraction", f(12.5), 12.5, ""},
		{"all", f(100), 100, ""},
		{"negative", f(-1), 42, `routes.yaml:1:9: legacy: bad percentage -1: 0 to 100`},
		{"above 100", f(100.01), 42, `routes.yaml:1:9: legacy: bad percentage 100.01: 0 to 100`},
		{"NaN", f(math.NaN()), 42, `routes.yaml:1:9: legacy: bad percentage NaN: 0 to 100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := valuesIndex(t)
			if got := ix.Share("legacy", tc.in, 42); got != tc.want {
				t.Errorf("Share = %v, want %v", got, tc.want)
			}
			if got := problem(t, ix); got != tc.err {
				t.Errorf("problem\n got: %s\nwant: %s", got, tc.err)
			}
		})
	}
}

func TestFloorAndPositive(t *testing.T) {
	t.Parallel()
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name string
		run  func(ix *Index) int
		want int
		err  string
	}{
		{"floor unset", func(ix *Index) int { return ix.Floor("legacy", nil, 10) }, 10, ""},
		{"floor zero is zero", func(ix *Index) int { return ix.Floor("legacy", n(0), 10) }, 0, ""},
		{"floor positive", func(ix *Index) int { return ix.Floor("legacy", n(3), 10) }, 3, ""},
		{"floor negative", func(ix *Index) int { return ix.Floor("legacy", n(-3), 10) }, 10,
			`routes.yaml:1:9: legacy: must not be negative`},
		{"positive zero is the default", func(ix *Index) int { return ix.Positive("legacy", 0, 256) }, 256, ""},
		{"positive", func(ix *Index) int { return ix.Positive("legacy", 5, 256) }, 5, ""},
		{"positive negative", func(ix *Index) int { return ix.Positive("legacy", -5, 256) }, 256,
			`routes.yaml:1:9: legacy: must be positive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := valuesIndex(t)
			if got := tc.run(ix); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			if got := problem(t, ix); got != tc.err {
				t.Errorf("problem\n got: %s\nwant: %s", got, tc.err)
			}
		})
	}
}

func TestKnownList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    map[string]int
		want string
	}{
		{"empty", map[string]int{}, " (no upstreams are defined)"},
		{"nil", nil, " (no upstreams are defined)"},
		{"sorted", map[string]int{"legacy": 1, "billing": 2, "courses": 3}, " (known: billing, courses, legacy)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := KnownList(tc.m, "no upstreams are defined"); got != tc.want {
				t.Errorf("KnownList = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServerSettingsTrusted(t *testing.T) {
	t.Parallel()
	s := &ServerSettings{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8"),
	}}
	for _, tc := range []struct {
		name, addr string
		want       bool
	}{
		{"inside a range", "10.1.2.3", true},
		{"single address", "192.168.1.7", true},
		{"next to it", "192.168.1.8", false},
		{"v6", "fd00::1", true},
		{"outside", "8.8.8.8", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Trusted(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Trusted(%s) = %v", tc.addr, got)
			}
		})
	}
	if (&ServerSettings{}).Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("edge mode trusts a peer")
	}
}
