package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits checked before a routes file is compiled, so that a huge file is
// refused in bounded memory, with one line, and a running gateway keeps
// serving. The byte limit comes first, before anything is parsed: YAML's
// node tree costs up to a hundred times the file's size (2 MiB of
// one-character list items is about 150 MiB of nodes), while 20,000
// typical routes take 1.3 MiB.
const (
	// MaxFileBytes caps a routes file's size.
	MaxFileBytes = 2 << 20
	// MaxRoutes caps the routes one file may declare.
	MaxRoutes = 20000
)

// Decode strictly decodes a routes file: one YAML document, a mapping at the
// top, every key known and every value of the right type. It returns the
// decoded File and the Index of its nodes, which holds the problems found
// so far; semantic validation (package gateway's compile) adds to it. A
// syntax error returns a ConfigErrors with the one problem the YAML parser
// reports, and a nil File.
func Decode(file string, data []byte) (*File, *Index, error) {
	if len(data) > MaxFileBytes {
		return nil, nil, TooLarge(file, int64(len(data)))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, ConfigErrors{{File: file, Line: 1, Col: 1, Err: errors.New("file is empty: a routes file needs at least legacy: and upstreams:")}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, ConfigErrors{syntaxError(file, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, nil, ConfigErrors{syntaxError(file, err)}
	default:
		return nil, nil, ConfigErrors{{File: file, Line: extra.Line, Col: 1, Err: errors.New("only one YAML document is allowed (remove the second ---)")}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil, ConfigErrors{{File: file, Line: 1, Col: 1, Err: errors.New("expected a mapping at the top level")}}
	}
	root := doc.Content[0]
	if routes := mappingValue(root, "routes"); routes != nil && routes.Kind == yaml.SequenceNode && len(routes.Content) > MaxRoutes {
		return nil, nil, ConfigErrors{{File: file, Line: routes.Line, Col: routes.Column, Path: "routes",
			Err: fmt.Errorf("%d routes: at most %d per file", len(routes.Content), MaxRoutes)}}
	}
	ix := NewIndex(file)
	// Sized up front: a 10,000-route file indexes a few hundred thousand
	// values, and growing the maps step by step costs a reload more than
	// the walk itself.
	n := countNodes(root)
	ix.nodes = make(map[string]*yaml.Node, n)
	ix.keys = make(map[string]*yaml.Node, n/2)
	ix.Walk(root, reflect.TypeOf(File{}), "")
	var f File
	if root.Kind == yaml.MappingNode {
		// Type errors were reported by Walk with their positions; decode
		// the rest so the semantic checks can run too.
		_ = root.Decode(&f)
	}
	return &f, ix, nil
}

// countNodes counts the nodes of a tree (aliases not followed).
func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// TooLarge is the one-line error for a routes file over MaxFileBytes.
func TooLarge(file string, size int64) ConfigErrors {
	return ConfigErrors{{File: file, Line: 1, Col: 1,
		Err: fmt.Errorf("file is %d bytes: a routes file may have at most %d (%d MiB); nothing was read past the limit", size, MaxFileBytes, MaxFileBytes>>20)}}
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var yamlErrLine = regexp.MustCompile(`line (\d+)`)

// yamlParserProblems are the problems yaml.v3's parser (not its scanner)
// reports. For them the decoder prints a 0-based line (it adds one only for
// scanner errors), so the line is off by one unless corrected.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

func syntaxError(name string, err error) *ConfigError {
	line := 1
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		for _, p := range yamlParserProblems {
			if strings.HasSuffix(msg, p) {
				line++
				break
			}
		}
	}
	return &ConfigError{File: name, Line: line, Col: 1, Err: fmt.Errorf("invalid YAML: %s", cleanYAMLError(err))}
}
