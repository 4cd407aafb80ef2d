package config

import (
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The value parsers below read the strings routes.yaml keeps for
// durations, sizes and shares, report a bad value at its path, and return
// the default instead so that validation can go on and report the rest.

// Duration parses a Go duration ("500ms", "5s", "2m"); "" is def. Zero is
// accepted only when allowZero; negatives never.
func (ix *Index) Duration(path, raw string, def time.Duration, allowZero bool) time.Duration {
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		ix.Errorf(path, "bad duration %q: use a number with a unit, like 500ms, 5s or 2m", raw)
		return def
	}
	if d < 0 || d == 0 && !allowZero {
		if allowZero {
			ix.Errorf(path, "bad duration %q: must not be negative", raw)
		} else {
			ix.Errorf(path, "bad duration %q: must be positive", raw)
		}
		return def
	}
	return d
}

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*([KMGT]i?B|B)?$`)

var sizeUnits = map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// Size parses "16KiB", "10MiB", "512" (bytes); "" is def; "unlimited"
// returns -1 when allowed.
func (ix *Index) Size(path, raw string, def int64, unlimited bool) int64 {
	if raw == "" {
		return def
	}
	if raw == "unlimited" {
		if unlimited {
			return -1
		}
		ix.Errorf(path, "bad size %q: this limit cannot be unlimited", raw)
		return def
	}
	m := sizeRe.FindStringSubmatch(raw)
	if m == nil {
		ix.Errorf(path, "bad size %q: use bytes or a unit, like 512, 16KiB, 10MiB or 2GiB", raw)
		return def
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	mult := sizeUnits[m[2]]
	if err != nil || mult == 0 || n > math.MaxInt64/mult {
		ix.Errorf(path, "bad size %q: too large", raw)
		return def
	}
	return n * mult
}

// Share reads an optional percentage (0 to 100) of a budget; nil is def.
func (ix *Index) Share(path string, p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	if *p < 0 || *p > 100 || math.IsNaN(*p) {
		ix.Errorf(path, "bad percentage %v: 0 to 100", *p)
		return def
	}
	return *p
}

// Floor reads an optional count that must not be negative; nil is def.
func (ix *Index) Floor(path string, n *int, def int) int {
	if n == nil {
		return def
	}
	if *n < 0 {
		ix.Errorf(path, "must not be negative")
		return def
	}
	return *n
}

// Positive reads a count where 0 means def and a negative is an error.
func (ix *Index) Positive(path string, n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		ix.Errorf(path, "must be positive")
		return def
	}
	return n
}

// KnownList renders the keys of m for an "unknown name" error, or none when
// m is empty: ` (known: a, b)`.
func KnownList[V any](m map[string]V, none string) string {
	names := slices.Sorted(maps.Keys(m))
	if len(names) == 0 {
		return " (" + none + ")"
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}
