package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// FlattenRoute lists a route's settings as written, one per leaf:
// "shadow.percent": "5", "match.methods": "[GET]". Unset values are left
// out, and so are zero values of plain fields (store_values: false is the
// default written out); a value behind a pointer or in a map was written
// and shows even when zero (see written). A plugin's configuration is a
// digest ("jwt sha256:…"), never its values. strangler diff compares two
// of these to report a change to any route setting.
func FlattenRoute(rs *RouteSpec) map[string]string {
	out := map[string]string{}
	flatten(out, "", reflect.ValueOf(rs).Elem())
	return out
}

var pluginSpecType = reflect.TypeOf(PluginSpec{})

func flatten(out map[string]string, key string, v reflect.Value) {
	join := func(name string) string {
		if key == "" {
			return name
		}
		return key + "." + name
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			written(out, key, v.Elem())
		}
	case reflect.Struct:
		if v.Type() == pluginSpecType {
			p := v.Addr().Interface().(*PluginSpec)
			b, _ := yaml.Marshal(&p.Config)
			sum := sha256.Sum256(b)
			out[key] = p.Name + " sha256:" + hex.EncodeToString(sum[:6])
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			flatten(out, join(name), v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return
		}
		if scalar(v.Type().Elem()) {
			parts := make([]string, v.Len())
			for i := range v.Len() {
				parts[i] = fmt.Sprint(v.Index(i).Interface())
			}
			out[key] = "[" + strings.Join(parts, ", ") + "]"
			return
		}
		for i := range v.Len() {
			flatten(out, fmt.Sprintf("%s[%d]", key, i), v.Index(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			written(out, join(fmt.Sprint(iter.Key().Interface())), iter.Value())
		}
	default:
		if !v.IsZero() {
			out[key] = fmt.Sprint(v.Interface())
		}
	}
}

func scalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint64, reflect.Float64:
		return true
	}
	return false
}

// written flattens a value the file wrote (a pointer's target, a map
// entry): unlike a plain field it shows even when it is zero, because
// there "unset" and zero mean different things (default_headers: false,
// fallback_budget: {percent: 0}, breaker: {} giving the route a breaker
// of its own, a header that must be empty).
func written(out map[string]string, key string, v reflect.Value) {
	n := len(out)
	flatten(out, key, v)
	if len(out) > n {
		return
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Map:
		out[key] = "{}"
	case reflect.Slice, reflect.Array:
		out[key] = "[]"
	case reflect.String:
		out[key] = `""`
	default:
		out[key] = fmt.Sprint(v.Interface())
	}
}
