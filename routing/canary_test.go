package routing

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"testing"
)

func TestPercentToBasisPoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		percent float64
		want    uint32
		wantErr bool
	}{
		{name: "zero", percent: 0, want: 0},
		{name: "negative zero", percent: math.Copysign(0, -1), want: 0},
		{name: "hundred", percent: 100, want: 10000},
		{name: "ten", percent: 10, want: 1000},
		{name: "one decimal", percent: 12.5, want: 1250},
		{name: "two decimals", percent: 12.34, want: 1234},
		{name: "smallest step", percent: 0.01, want: 1},
		{name: "largest below hundred", percent: 99.99, want: 9999},
		{name: "third", percent: 33.33, want: 3333},
		// binary floating point: 0.29*100 is 28.999999999999996
		{name: "float rounding below", percent: 0.29, want: 29},
		{name: "float rounding above", percent: 0.57, want: 57},
		{name: "float rounding 4.35", percent: 4.35, want: 435},
		{name: "float rounding 1.13", percent: 1.13, want: 113},
		{name: "three decimals", percent: 12.345, wantErr: true},
		{name: "below smallest step", percent: 0.001, wantErr: true},
		{name: "half step", percent: 0.005, wantErr: true},
		{name: "over hundred", percent: 150, wantErr: true},
		{name: "just over hundred", percent: 100.01, wantErr: true},
		{name: "negative", percent: -1, wantErr: true},
		{name: "small negative", percent: -0.01, wantErr: true},
		{name: "NaN", percent: math.NaN(), wantErr: true},
		{name: "infinity", percent: math.Inf(1), wantErr: true},
		{name: "negative infinity", percent: math.Inf(-1), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := PercentToBasisPoints(tc.percent)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("PercentToBasisPoints(%v) = %d, want an error", tc.percent, got)
				}
				if err.Error() != "must be a number from 0 to 100 with at most two decimals" {
					t.Errorf("error = %q", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("PercentToBasisPoints(%v) = %d, %v; want %d", tc.percent, got, err, tc.want)
			}
		})
	}
}

// TestPercentToBasisPointsEveryStep: every value with at most two decimals
// that a user can write converts exactly.
func TestPercentToBasisPointsEveryStep(t *testing.T) {
	t.Parallel()
	for bp := 0; bp <= 10000; bp++ {
		p, err := strconv.ParseFloat(fmt.Sprintf("%d.%02d", bp/100, bp%100), 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := PercentToBasisPoints(p)
		if err != nil || got != uint32(bp) {
			t.Fatalf("PercentToBasisPoints(%v) = %d, %v; want %d", p, got, err, bp)
		}
	}
}

// TestBucketStable pins buckets for fixed keys: cohorts must survive
// restarts, replicas and releases, so any change to the hash fails here.
func TestBucketStable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, salt, key string
		want            uint32
	}{
		{name: "user id", key: "user-1", want: 8872},
		{name: "ip", key: "203.0.113.7", want: 8113},
		{name: "salted", salt: "checkout", key: "user-1", want: 5657},
		{name: "empty key", key: "", want: 8995},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Canary{Salt: tc.salt}
			for i := 0; i < 3; i++ {
				if got := c.Bucket([]byte(tc.key)); got != tc.want {
					t.Fatalf("Bucket(%q) with salt %q = %d, want %d", tc.key, tc.salt, got, tc.want)
				}
			}
			// The documented construction, computed independently:
			// FNV-1a-64 over salt, 0x00, key; high half folded in; mod 10000.
			h := fnv.New64a()
			h.Write([]byte(tc.salt))
			h.Write([]byte{0})
			h.Write([]byte(tc.key))
			sum := h.Sum64()
			if want := uint32((sum ^ sum>>32) % 10000); want != tc.want {
				t.Errorf("reference hash gives %d, pinned value is %d", want, tc.want)
			}
		})
	}
}

func TestBucketSaltSeparatesKeys(t *testing.T) {
	t.Parallel()
	// The 0x00 separator: salt "a" + key "bc" must not equal salt "ab" + key "c".
	differ := 0
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("%d", i)
		a := (&Canary{Salt: "s" + k[:1]}).Bucket([]byte(k[1:] + "x"))
		b := (&Canary{Salt: "s"}).Bucket([]byte(k + "x"))
		if a != b {
			differ++
		}
	}
	if differ < 90 {
		t.Errorf("only %d of 100 salt/key splits gave different buckets", differ)
	}
}

// TestCanaryDistribution: a 10% canary sends 10% ± 1% of distinct clients
// to new, and every bucket is in range.
func TestCanaryDistribution(t *testing.T) {
	t.Parallel()
	const n = 20000
	tests := []struct {
		name    string
		salt    string
		key     func(i int) string
		percent float64
	}{
		{name: "user ids 10%", key: func(i int) string { return fmt.Sprintf("user-%d", i) }, percent: 10},
		{name: "ipv4 10%", key: func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }, percent: 10},
		{name: "uuids salted 10%", salt: "route-2", key: func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i*7919, i) }, percent: 10},
		{name: "user ids 50%", key: func(i int) string { return fmt.Sprintf("u%d", i) }, percent: 50},
		{name: "user ids 1%", key: func(i int) string { return fmt.Sprintf("member:%d", i) }, percent: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bp, err := PercentToBasisPoints(tc.percent)
			if err != nil {
				t.Fatal(err)
			}
			c := &Canary{Salt: tc.salt, BasisPoints: bp}
			toNew := 0
			for i := 0; i < n; i++ {
				key := []byte(tc.key(i))
				if b := c.Bucket(key); b >= 10000 {
					t.Fatalf("Bucket(%q) = %d, out of range", key, b)
				}
				if c.Choose(key) == SideNew {
					toNew++
				}
			}
			got := float64(toNew) * 100 / n
			if math.Abs(got-tc.percent) > 1 {
				t.Errorf("%.2f%% of %d clients went to new, want %v%% ± 1%%", got, n, tc.percent)
			}
		})
	}
}

// TestCanaryRaiseOnlyAdds: raising the percentage moves clients from legacy
// to new and never back; 0% sends nobody and 100% everybody.
func TestCanaryRaiseOnlyAdds(t *testing.T) {
	t.Parallel()
	steps := []float64{0, 0.01, 1, 5, 10, 12.5, 25, 50, 75, 99.99, 100}
	const n = 5000
	onNew := make([]bool, n)
	prevCount, prev := 0, 0.0
	for _, p := range steps {
		bp, err := PercentToBasisPoints(p)
		if err != nil {
			t.Fatal(err)
		}
		c := &Canary{Salt: "courses", BasisPoints: bp}
		count := 0
		for i := range onNew {
			side := c.Choose([]byte(fmt.Sprintf("client-%d", i)))
			if onNew[i] && side != SideNew {
				t.Fatalf("client-%d was on new at %v%% and is back on legacy at %v%%", i, prev, p)
			}
			onNew[i] = side == SideNew
			if onNew[i] {
				count++
			}
		}
		if count < prevCount {
			t.Fatalf("%v%%: %d clients on new, fewer than %d before", p, count, prevCount)
		}
		prevCount, prev = count, p
		switch p {
		case 0:
			if count != 0 {
				t.Errorf("0%%: %d clients on new, want none", count)
			}
		case 100:
			if count != n {
				t.Errorf("100%%: %d of %d clients on new, want all", count, n)
			}
		}
	}
}

type fakeKeys struct {
	header, cookie, query map[string]string
	ip                    string
}

func (f fakeKeys) get(m map[string]string, k string) []byte {
	if v, ok := m[k]; ok {
		return []byte(v)
	}
	return nil
}
func (f fakeKeys) Header(n string) []byte { return f.get(f.header, n) }
func (f fakeKeys) Cookie(n string) []byte { return f.get(f.cookie, n) }
func (f fakeKeys) Query(n string) []byte  { return f.get(f.query, n) }
func (f fakeKeys) ClientIP() []byte       { return []byte(f.ip) }
func (f fakeKeys) Identity() []byte       { return nil }

func TestCohortKey(t *testing.T) {
	t.Parallel()
	keys := []KeySource{{Kind: "cookie", Name: "uid"}, {Kind: "header", Name: "X-User-Id"}, {Kind: "query", Name: "u"}}
	tests := []struct {
		name    string
		req     fakeKeys
		wantKey string
		wantSrc string
	}{
		{name: "first present wins", req: fakeKeys{cookie: map[string]string{"uid": "c1"}, header: map[string]string{"X-User-Id": "h1"}, ip: "192.0.2.1"}, wantKey: "c1", wantSrc: "cookie:uid"},
		{name: "second source", req: fakeKeys{header: map[string]string{"X-User-Id": "h1"}, query: map[string]string{"u": "q1"}, ip: "192.0.2.1"}, wantKey: "h1", wantSrc: "header:X-User-Id"},
		{name: "empty value skipped", req: fakeKeys{cookie: map[string]string{"uid": ""}, query: map[string]string{"u": "q1"}, ip: "192.0.2.1"}, wantKey: "q1", wantSrc: "query:u"},
		{name: "falls back to ip", req: fakeKeys{ip: "192.0.2.1"}, wantKey: "192.0.2.1", wantSrc: "ip"},
	}
	c := &Canary{Keys: keys}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, src := c.CohortKey(tc.req)
			if string(key) != tc.wantKey || src.String() != tc.wantSrc {
				t.Errorf("CohortKey = %q from %s, want %q from %s", key, src, tc.wantKey, tc.wantSrc)
			}
		})
	}
}

func TestParseKeySource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "ip", want: "ip"},
		{in: "header:X-User-Id", want: "header:X-User-Id"},
		{in: "cookie:uid", want: "cookie:uid"},
		{in: "query:u", want: "query:u"},
		{in: "header:", wantErr: `bad key "header:": use header:NAME, cookie:NAME, query:NAME, identity or ip`},
		{in: "uid", wantErr: `bad key "uid": use header:NAME, cookie:NAME, query:NAME, identity or ip`},
		{in: "jwt:sub", wantErr: `bad key "jwt:sub": unknown source "jwt" (use header, cookie, query, identity or ip)`},
		{in: "header:X User", wantErr: `bad key "header:X User": "X User" is not a valid name`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKeySource(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("ParseKeySource(%q) = %v, %v; want error %q", tc.in, k, err, tc.wantErr)
				}
				return
			}
			if err != nil || k.String() != tc.want {
				t.Errorf("ParseKeySource(%q) = %v, %v; want %s", tc.in, k, err, tc.want)
			}
		})
	}
}
