package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// LoadOptions are what compiling a table needs besides the file.
type LoadOptions struct {
	// Registry resolves plugin names. Nil: no plugins.
	Registry Registry
	// Metrics receives the route metrics. Nil: a private registry (validate).
	Metrics *Metrics
	// Logger for plugins. Nil: discard.
	Logger *slog.Logger
	// Terminal is the handler at the end of every route's plugin chain (the
	// Router's proxy). Nil for tables that will never serve.
	Terminal fiber.Handler
	// Offline builds a table to be inspected, not served (strangler
	// route): plugins neither fetch anything nor require secrets.
	Offline bool
	// Previous is the serving table on a reload: upstreams whose settings
	// did not change keep its connection pools, breakers, retry budgets
	// and bulkheads.
	Previous *Table
}

// Load reads, strictly decodes, validates and compiles a routes file. On
// failure the error is a ConfigErrors listing every problem.
func Load(path string, opts LoadOptions) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading routes: %w", err)
	}
	return Parse(path, data, opts)
}

var yamlErrLine = regexp.MustCompile(`line (\d+)`)

// Parse is Load for bytes already read; file names the source in errors.
func Parse(file string, data []byte, opts LoadOptions) (*Table, error) {
	name := file
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ConfigErrors{{File: name, Line: 1, Col: 1, Err: errors.New("file is empty: a routes file needs at least legacy: and upstreams:")}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, ConfigErrors{syntaxError(name, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, ConfigErrors{syntaxError(name, err)}
	default:
		return nil, ConfigErrors{{File: name, Line: extra.Line, Col: 1, Err: errors.New("only one YAML document is allowed (remove the second ---)")}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, ConfigErrors{{File: name, Line: 1, Col: 1, Err: errors.New("expected a mapping at the top level")}}
	}
	root := doc.Content[0]
	ix := newNodeIndex(name)
	ix.walk(root, reflect.TypeOf(File{}), "")
	var f File
	if root.Kind == yaml.MappingNode {
		// Type errors were reported by walk with their positions; decode
		// the rest so the semantic checks can run too.
		_ = root.Decode(&f)
	}
	c := &compiler{ix: ix, file: name, path: file, opts: opts}
	t := c.compile(&f)
	var errs, warns ConfigErrors
	for _, e := range ix.errs.sorted() {
		if e.Warning {
			warns = append(warns, e)
		} else {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		if t != nil {
			_ = t.Close()
		}
		return nil, errs
	}
	t.Warnings = warns
	return t, nil
}

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
