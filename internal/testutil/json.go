package testutil

import "fmt"

// Dig reads a value out of decoded JSON as text: Dig(v, "routes", 0, "id");
// "<nil>" for a missing key or null, "<missing>" for an index past the end.
func Dig(v any, path ...any) string {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return "<missing>"
			}
			v = l[k]
		}
	}
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprint(v)
}
