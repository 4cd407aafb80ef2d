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

// Decode strictly decodes a routes file: one YAML document, a mapping at the
// top, every key known and every value of the right type. It returns the
// decoded File and the Index of its nodes, which holds the problems found
// so far; semantic validation (package gateway's compile) adds to it. A
// syntax error returns a ConfigErrors with the one problem the YAML parser
// reports, and a nil File.
func Decode(file string, data []byte) (*File, *Index, error) {
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
	ix := NewIndex(file)
	ix.Walk(root, reflect.TypeOf(File{}), "")
	var f File
	if root.Kind == yaml.MappingNode {
		// Type errors were reported by Walk with their positions; decode
		// the rest so the semantic checks can run too.
		_ = root.Decode(&f)
	}
	return &f, ix, nil
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
