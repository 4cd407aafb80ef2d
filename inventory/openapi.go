package inventory

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// OpenAPI 3.0 document types: only what the export writes.

// OpenAPIDoc is an OpenAPI 3.0 document.
type OpenAPIDoc struct {
	OpenAPI string                    `json:"openapi"`
	Info    OpenAPIInfo               `json:"info"`
	Paths   map[string]map[string]*Op `json:"paths"`
}

// OpenAPIInfo is the document's info object.
type OpenAPIInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Op is an operation: one method of one path.
type Op struct {
	OperationID string               `json:"operationId"`
	Summary     string               `json:"summary"`
	Description string               `json:"description,omitempty"`
	Parameters  []*Param             `json:"parameters,omitempty"`
	Responses   map[string]*Response `json:"responses"`
	// Strangler holds what the inventory measured.
	Strangler *OpStats `json:"x-strangler"`
}

// Param is an operation parameter.
type Param struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Required    bool    `json:"required,omitempty"`
	Description string  `json:"description,omitempty"`
	Schema      *Schema `json:"schema"`
}

// Schema is a parameter's schema (strings only: that is what URLs carry).
type Schema struct {
	Type    string   `json:"type"`
	Format  string   `json:"format,omitempty"`
	Pattern string   `json:"pattern,omitempty"`
	Enum    []string `json:"enum,omitempty"`
}

// Response is a response object.
type Response struct {
	Description string `json:"description"`
}

// OpStats is the x-strangler extension of an operation.
type OpStats struct {
	Endpoints []string  `json:"endpoints"`
	Side      string    `json:"side"`
	Requests  int64     `json:"requests"`
	Legacy    int64     `json:"legacy_requests"`
	New       int64     `json:"new_requests"`
	ErrorRate float64   `json:"error_rate"`
	P99ms     float64   `json:"p99_ms"`
	ClaimedBy string    `json:"claimed_by,omitempty"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

var paramSchemas = [nClass]*Schema{
	clID:   {Type: "string", Pattern: "^[0-9]+$"},
	clUUID: {Type: "string", Format: "uuid"},
	clHex:  {Type: "string", Pattern: "^[0-9a-fA-F]+$"},
	clDate: {Type: "string", Format: "date"},
	clSlug: {Type: "string"},
	clRest: {Type: "string"},
}

// OpenAPI exports the learnt endpoints as an OpenAPI 3.0 document: one
// path per template, one operation per method. Endpoints that differ only
// by selector values (/index.php?page=export, ?page=home) are one
// operation whose selector is an enum parameter. Measured traffic is in
// each operation's x-strangler extension.
func OpenAPI(r *Report) *OpenAPIDoc {
	doc := &OpenAPIDoc{
		OpenAPI: "3.0.3",
		Info: OpenAPIInfo{
			Title:   "Endpoints learnt from traffic by strangler",
			Version: r.Generated.UTC().Format(time.RFC3339),
			Description: fmt.Sprintf("%d endpoints from %d requests; the new side serves %.1f%% of requests and %d of %d endpoints.",
				r.Coverage.Endpoints, r.Requests.Total(), 100*r.Coverage.RequestsNewShare, r.Coverage.EndpointsNew, r.Coverage.Endpoints),
		},
		Paths: map[string]map[string]*Op{},
	}
	// Paths that differ only by parameter names are one path in OpenAPI:
	// group templates by shape.
	type group struct {
		key       string   // the path key: the first template's pattern
		templates []string // sorted
		eps       []EndpointReport
	}
	groups := map[string]*group{}
	for _, e := range r.Endpoints {
		shape := shapeOf(e.Path)
		g := groups[shape]
		if g == nil {
			g = &group{}
			groups[shape] = g
		}
		if !slices.Contains(g.templates, e.Path) {
			g.templates = append(g.templates, e.Path)
		}
		g.eps = append(g.eps, e)
	}
	ids := map[string]bool{}
	for _, shape := range sortedKeys(groups) {
		g := groups[shape]
		slices.Sort(g.templates)
		pattern, _ := patternOf(g.templates[0])
		key := strings.ReplaceAll(pattern, "...}", "}")
		mixed := len(g.templates) > 1
		ops := map[string]*Op{}
		byMethod := map[string][]EndpointReport{}
		for _, e := range g.eps {
			byMethod[e.Method] = append(byMethod[e.Method], e)
		}
		for _, m := range sortedKeys(byMethod) {
			lm := strings.ToLower(m)
			if !openAPIMethods[lm] {
				continue // OpenAPI 3.0 has no place for other methods
			}
			op := operation(g.templates[0], byMethod[m], mixed)
			op.OperationID = uniqueID(lm+"-"+routeID(g.templates[0], nil), ids)
			ops[lm] = op
		}
		if len(ops) > 0 {
			doc.Paths[key] = ops
		}
	}
	return doc
}

var openAPIMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// shapeOf is a template with parameter names erased.
func shapeOf(template string) string {
	segs := strings.Split(template, "/")
	for i, s := range segs {
		if _, ok := classOfParam(s); ok {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

func uniqueID(id string, taken map[string]bool) string {
	out := id
	for n := 2; taken[out]; n++ {
		out = fmt.Sprintf("%s-%d", id, n)
	}
	taken[out] = true
	return out
}

// operation builds one method of one path from its endpoints.
func operation(template string, eps []EndpointReport, mixed bool) *Op {
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].Endpoint < eps[j].Endpoint })
	op := &Op{Responses: map[string]*Response{}, Strangler: &OpStats{Side: "legacy"}}
	st := op.Strangler
	status := map[string]int64{}
	var newReqs int64
	for _, e := range eps {
		st.Endpoints = append(st.Endpoints, e.Endpoint)
		st.Requests += e.Requests
		st.Legacy += e.Legacy
		st.New += e.New
		st.ErrorRate += e.ErrorRate * float64(e.Requests)
		st.P99ms = max(st.P99ms, e.P99ms)
		if e.LastSeen.After(st.LastSeen) {
			st.LastSeen = e.LastSeen
		}
		if e.ClaimedBy != "" && st.ClaimedBy == "" {
			st.ClaimedBy = e.ClaimedBy
		}
		if e.Side == "new" {
			newReqs += e.Requests
		}
		for k, v := range e.Status {
			status[k] += v
		}
	}
	if st.Requests > 0 {
		st.ErrorRate /= float64(st.Requests)
	}
	if 2*newReqs > st.Requests {
		st.Side = "new"
	}
	op.Summary = strings.Join(st.Endpoints, ", ")
	op.Description = fmt.Sprintf("%d requests (%d on legacy, %d on new), p99 %s, %.1f%% 5xx.", st.Requests, st.Legacy, st.New, fmtMS(st.P99ms), 100*st.ErrorRate)
	if eps[0].Example != "" {
		op.Description += " Example: " + eps[0].Example
	}
	for k, v := range status {
		code := strings.ToUpper(k)
		if k == "other" {
			code = "default"
		}
		op.Responses[code] = &Response{Description: fmt.Sprintf("%d responses seen", v)}
	}
	if len(op.Responses) == 0 {
		op.Responses["default"] = &Response{Description: "no response recorded"}
	}
	// Path parameters, in order.
	_, names := patternOf(template)
	k := 0
	for _, s := range strings.Split(template, "/") {
		c, ok := classOfParam(s)
		if !ok {
			continue
		}
		sc := paramSchemas[c]
		if mixed {
			sc = &Schema{Type: "string"}
		}
		p := &Param{Name: names[k], In: "path", Required: true, Schema: sc}
		if c == clRest {
			p.Description = "the rest of the path, slashes included"
		}
		op.Parameters = append(op.Parameters, p)
		k++
	}
	// Query parameters: selectors (an enum of the values seen) and the
	// other keys.
	type qp struct {
		vals     []string
		requests int64
		in       int  // endpoints that have it
		asParam  bool // some endpoint has it as a plain parameter
	}
	query := map[string]*qp{}
	for _, e := range eps {
		seen := map[string]bool{}
		for _, s := range e.Selectors {
			q := query[s.Key]
			if q == nil {
				q = &qp{}
				query[s.Key] = q
			}
			if !slices.Contains(q.vals, s.Value) {
				q.vals = append(q.vals, s.Value)
			}
			q.requests += e.Requests
			if !seen[s.Key] {
				q.in++
				seen[s.Key] = true
			}
		}
		for _, p := range e.Params {
			q := query[p.Name]
			if q == nil {
				q = &qp{}
				query[p.Name] = q
			}
			q.requests += p.Requests
			q.asParam = true
			if !seen[p.Name] && p.Required {
				q.in++
				seen[p.Name] = true
			}
		}
	}
	for _, name := range sortedKeys(query) {
		q := query[name]
		sc := &Schema{Type: "string"}
		desc := fmt.Sprintf("seen on %d requests", q.requests)
		if len(q.vals) > 0 {
			slices.Sort(q.vals)
			desc += "; its value selects the page: " + strings.Join(q.vals, ", ")
			if !q.asParam && !slices.ContainsFunc(q.vals, func(v string) bool { return strings.Contains(v, "{") }) {
				sc.Enum = q.vals
			}
		}
		op.Parameters = append(op.Parameters, &Param{Name: name, In: "query", Required: q.in == len(eps), Description: desc, Schema: sc})
	}
	return op
}
