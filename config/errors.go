package config

import (
	"fmt"
	"sort"
	"strings"
)

// ConfigError is one problem in a routes.yaml file, located by line, column
// and the path of the offending value, e.g.
//
//	routes.yaml:14:7: routes[2].new.upstream: unknown upstream "billing-v2" (known: billing, legacy)
type ConfigError struct {
	File      string
	Line, Col int
	Path      string
	Err       error
	// Warning marks a problem that does not stop the file from loading
	// (strangler validate prints it; serve logs it).
	Warning bool
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %v", e.File, e.Line, e.Col, e.Path, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigErrors is every problem found in one file, sorted by position. Its
// Error lists one problem per line.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Sorted orders the problems by position, in place, and returns them.
func (es ConfigErrors) Sorted() ConfigErrors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}
