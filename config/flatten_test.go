package config

import (
	"reflect"
	"strings"
	"testing"
)

// flatRoute decodes a routes file holding one route and flattens it.
func flatRoute(t *testing.T, route string) map[string]string {
	t.Helper()
	f, _, err := Decode("routes.yaml", []byte("legacy: l\nroutes:\n  - "+route+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return FlattenRoute(f.Routes[0])
}

// TestFlattenRouteSettingsAsWritten: a setting written with its zero value
// (false, 0, an empty section, an empty header value) differs from the
// setting left out, because the gateway treats them differently:
// default_headers: false stops comparing the default headers, a
// fallback_budget percent of 0 allows no fallback beyond min_fallbacks,
// breaker: {} gives the route a breaker of its own. strangler diff
// compares these maps, so each of these edits must show (issue 14:
// "strangler diff reports changes to any route setting").
func TestFlattenRouteSettingsAsWritten(t *testing.T) {
	t.Parallel()
	const base = `{id: r, match: {prefix: /r}, side: legacy, new: {upstream: n}, fallback: legacy`
	for _, tc := range []struct {
		name, before, after, key, want string
	}{
		{"default headers off", base + `, shadow: {percent: 5}}`, base + `, shadow: {percent: 5, default_headers: false}}`, "shadow.default_headers", "false"},
		{"shadow percent to 0", base + `, shadow: {percent: 5}}`, base + `, shadow: {percent: 0}}`, "shadow.percent", "0"},
		{"fallback budget 0%", base + `}`, base + `, fallback_budget: {percent: 0}}`, "fallback_budget.percent", "0"},
		{"no free fallbacks", base + `, fallback_budget: {percent: 5}}`, base + `, fallback_budget: {percent: 5, min_fallbacks: 0}}`, "fallback_budget.min_fallbacks", "0"},
		{"a breaker of its own", base + `}`, base + `, breaker: {}}`, "breaker", "{}"},
		{"own timeouts section", base + `}`, base + `, timeouts: {}}`, "timeouts", "{}"},
		{"header must be empty", base + `}`, `{id: r, match: {prefix: /r, headers: {X-Beta: ""}}, side: legacy, new: {upstream: n}, fallback: legacy}`, "match.headers.X-Beta", `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, a := flatRoute(t, tc.before), flatRoute(t, tc.after)
			if reflect.DeepEqual(a, b) {
				t.Fatalf("the edit does not show: both %v", a)
			}
			if got, ok := a[tc.key]; !ok || got != tc.want {
				t.Errorf("%s = %q (set %v), want %q\nall: %v", tc.key, got, ok, tc.want, a)
			}
		})
	}
	// Leaving a zero value out changes nothing: the same route written
	// twice flattens the same.
	if a, b := flatRoute(t, base+`, shadow: {percent: 5}}`), flatRoute(t, base+`, shadow: {percent: 5}}`); !reflect.DeepEqual(a, b) {
		t.Errorf("%v != %v", a, b)
	}
}

// TestFlattenRouteEveryOptionalField: every pointer field of a route
// (anywhere below RouteSpec: "unset" differs from zero there by design)
// shows in the flattened settings when it is set to its zero value, so a
// new optional setting cannot be invisible to strangler diff.
func TestFlattenRouteEveryOptionalField(t *testing.T) {
	t.Parallel()
	n := 0
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || f.Type == pluginSpecType {
				continue
			}
			key := name
			if path != "" {
				key = path + "." + name
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				n++
				rs := &RouteSpec{}
				allocPath(reflect.ValueOf(rs).Elem(), key)
				got := FlattenRoute(rs)
				found := false
				for k := range got {
					if k == key || strings.HasPrefix(k, key+".") {
						found = true
					}
				}
				if !found {
					t.Errorf("%s set to its zero value does not show: %v", key, got)
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, key)
			}
		}
	}
	walk(reflect.TypeOf(RouteSpec{}), "")
	if n < 10 {
		t.Fatalf("found %d pointer fields below RouteSpec, expected more", n)
	}
}

// allocPath sets the field at a dotted yaml path of v (a struct), and
// every pointer on the way, to a fresh zero value.
func allocPath(v reflect.Value, path string) {
	name, rest, more := strings.Cut(path, ".")
	typ := v.Type()
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if tag != name {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			}
			f = f.Elem()
		}
		if more {
			allocPath(f, rest)
		}
		return
	}
	panic("no field " + name + " in " + typ.String())
}
