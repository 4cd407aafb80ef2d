package inventory

import (
	"slices"
	"strings"
)

// The endpoints live in a tree of path segments. A node's children are
// its literal segments and one child per parameter class; once a node has
// seen too many distinct literals (maxWords, or maxSlugs slug-like ones) it
// is collapsed: its literal children are merged into one {slug} child, and
// every later literal goes there. A path's last node holds a leaf: the
// query keys that may select a page there, and the endpoints (one per
// method and selector values). A query key that sees too many distinct
// values is collapsed the same way: its selector endpoints merge.
//
// Merging is a union of the sets of values seen and a sum of the counters,
// so the final tree does not depend on the order requests arrived in.

type node struct {
	parent    *node
	label     string // the literal ("" for parameters and the root)
	cls       class
	lits      map[string]*node
	params    [nClass]*node
	slugs     int // slug-like literals among lits
	collapsed bool
	leaf      *leaf
}

type leaf struct {
	node *node
	keys map[string]*qkey
	eps  map[string]*Endpoint // by signature: method, then selectors
}

// qkey is a query key of one path that may select a page: the distinct
// values it selected, until it is collapsed into a parameter.
type qkey struct {
	vals      map[string]bool
	slugs     int
	collapsed bool
}

// maxLeafKeys bounds the selector keys tracked per path; later keys are
// parameters.
const maxLeafKeys = 32

// next is a read-only step down the tree.
func (n *node) next(seg string, c class) *node {
	switch {
	case c != clWord:
		return n.params[c]
	case n.collapsed:
		return n.params[clSlug]
	}
	return n.lits[seg]
}

func (inv *Inventory) newNode(parent *node, label string, c class) *node {
	inv.nodes++
	return &node{parent: parent, label: label, cls: c}
}

// child is a step down the tree that creates what is missing (write
// lock). It returns nil when the node budget is spent.
func (inv *Inventory) child(n *node, seg string, c class) *node {
	if c == clSlug && !n.collapsed {
		inv.collapse(n) // a restored template says so
	}
	if c == clWord && n.collapsed {
		c = clSlug
	}
	if c != clWord {
		if n.params[c] == nil {
			if inv.nodes >= inv.maxNodes {
				return nil
			}
			n.params[c] = inv.newNode(n, "", c)
		}
		return n.params[c]
	}
	if x := n.lits[seg]; x != nil {
		return x
	}
	if inv.nodes >= inv.maxNodes {
		return nil
	}
	x := inv.newNode(n, strings.Clone(seg), clWord)
	inv.addLit(n, x)
	if n.collapsed {
		return n.params[clSlug]
	}
	return x
}

// addLit adds a literal child and collapses n when it has too many.
func (inv *Inventory) addLit(n, x *node) {
	if n.lits == nil {
		n.lits = map[string]*node{}
	}
	x.parent = n
	n.lits[x.label] = x
	if slugLike(x.label) {
		n.slugs++
	}
	if len(n.lits) > maxWords || n.slugs > maxSlugs {
		inv.collapse(n)
	}
}

// collapse turns n's literal children into one {slug} child.
func (inv *Inventory) collapse(n *node) {
	if n.collapsed {
		return
	}
	n.collapsed = true
	s := n.params[clSlug]
	if s == nil {
		s = inv.newNode(n, "", clSlug)
		n.params[clSlug] = s
	}
	lits := n.lits
	n.lits, n.slugs = nil, 0
	for _, k := range sortedKeys(lits) {
		inv.mergeNode(s, lits[k])
	}
}

// mergeNode merges the subtree src into dst; src is gone afterwards.
func (inv *Inventory) mergeNode(dst, src *node) {
	inv.nodes--
	for _, k := range sortedKeys(src.lits) {
		c := src.lits[k]
		switch {
		case dst.collapsed:
			inv.mergeNode(dst.params[clSlug], c)
		case dst.lits[k] != nil:
			inv.mergeNode(dst.lits[k], c)
		default:
			inv.addLit(dst, c) // may collapse dst: later literals go to its {slug}
		}
	}
	for cl := clID; cl < nClass; cl++ {
		sp := src.params[cl]
		if sp == nil {
			continue
		}
		if cl == clSlug && !dst.collapsed {
			inv.collapse(dst)
		}
		if dp := dst.params[cl]; dp != nil {
			inv.mergeNode(dp, sp)
		} else {
			sp.parent = dst
			dst.params[cl] = sp
		}
	}
	if src.leaf != nil {
		if dst.leaf == nil {
			src.leaf.node = dst
			dst.leaf = src.leaf
		} else {
			inv.mergeLeaf(dst.leaf, src.leaf)
		}
	}
}

// mergeLeaf moves src's endpoints into dst, merging those that are now the
// same endpoint, and applies the union of their selector keys.
func (inv *Inventory) mergeLeaf(dst, src *leaf) {
	for _, k := range sortedKeys(src.keys) {
		sk := src.keys[k]
		dk := dst.keys[k]
		if dk == nil {
			if dst.keys == nil {
				dst.keys = map[string]*qkey{}
			}
			dst.keys[k] = sk
			continue
		}
		if sk.collapsed {
			dk.collapsed = true // applied below, once the endpoints are in
			continue
		}
		for v := range sk.vals {
			if !dk.collapsed && !dk.vals[v] {
				dk.vals[v] = true
				if slugLike(v) && !strings.Contains(v, "/") {
					dk.slugs++
				}
			}
		}
	}
	for _, sig := range sortedKeys(src.eps) {
		ep := src.eps[sig]
		inv.putEndpoint(dst, ep)
	}
	for _, k := range sortedKeys(dst.keys) {
		dk := dst.keys[k]
		if dk.collapsed || len(dk.vals) > maxWords || dk.slugs > maxSlugs {
			inv.collapseKey(dst, k, dk)
		}
	}
}

// putEndpoint files ep in l under its signature, merging it into an
// endpoint already there.
func (inv *Inventory) putEndpoint(l *leaf, ep *Endpoint) {
	ep.leaf = l
	if l.eps == nil {
		l.eps = map[string]*Endpoint{}
	}
	if d := l.eps[ep.sig]; d != nil && d != ep {
		d.mergeFrom(ep)
		inv.endpoints--
		return
	}
	l.eps[ep.sig] = ep
}

// addValue records a selector value of key k at l (write lock) and
// collapses the key when it has too many.
func (inv *Inventory) addValue(l *leaf, key string, k *qkey, v []byte, kind valueKind) {
	s := string(v)
	k.vals[s] = true
	if kind == vSelector && slugLike(s) {
		k.slugs++
	}
	if len(k.vals) > maxWords || k.slugs > maxSlugs {
		inv.collapseKey(l, key, k)
	}
}

// collapseKey makes a query key a parameter at l: the endpoints that
// differed only by its value merge.
func (inv *Inventory) collapseKey(l *leaf, key string, k *qkey) {
	k.collapsed, k.vals, k.slugs = true, nil, 0
	var moved []*Endpoint
	for _, sig := range sortedKeys(l.eps) {
		ep := l.eps[sig]
		i := slices.IndexFunc(ep.sels, func(s selector) bool { return s.key == key })
		if i < 0 {
			continue
		}
		delete(l.eps, sig)
		ep.sels = slices.Delete(slices.Clone(ep.sels), i, i+1)
		ep.sig = signature(ep.method, ep.sels)
		ep.addParamCount(key, ep.total())
		moved = append(moved, ep)
	}
	for _, ep := range moved {
		inv.putEndpoint(l, ep)
	}
}

// signature is an endpoint's key in its leaf.
func signature(method string, sels []selector) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte(0)
	for _, s := range sels {
		b.WriteString(s.key)
		b.WriteByte('=')
		b.WriteString(s.value)
		b.WriteByte('&')
	}
	return b.String()
}

// sign computes the request's signature at l into sc.sig and marks which
// query keys are parameters. Read-only unless insert: then unknown keys
// and values are recorded (which may collapse a key). Without insert it
// returns false when something is unknown.
func (inv *Inventory) sign(sc *scan, l *leaf, method string, insert bool) bool {
	sc.nsig = copy(sc.sig[:], method)
	if sc.nsig < len(sc.sig) {
		sc.sig[sc.nsig] = 0
		sc.nsig++
	}
	for i := 0; i < sc.nq; i++ {
		q := &sc.q[i]
		q.param = true
		if q.kind == vParam {
			continue
		}
		k := l.keys[q.key]
		if k == nil {
			if len(l.keys) >= maxLeafKeys {
				continue
			}
			if !insert {
				return false
			}
			if l.keys == nil {
				l.keys = map[string]*qkey{}
			}
			k = &qkey{vals: map[string]bool{}}
			l.keys[strings.Clone(q.key)] = k
		}
		if k.collapsed {
			continue
		}
		v := sc.val(q)
		if need := len(q.key) + len(v) + 2; sc.nsig+need > len(sc.sig) {
			continue // too long to be a selector: a parameter, both ways
		}
		if !k.vals[string(v)] {
			if !insert {
				return false
			}
			inv.addValue(l, q.key, k, v, q.kind)
			if k.collapsed {
				continue
			}
		}
		q.param = false
		sc.nsig += copy(sc.sig[sc.nsig:], q.key)
		sc.sig[sc.nsig] = '='
		sc.nsig++
		sc.nsig += copy(sc.sig[sc.nsig:], v)
		sc.sig[sc.nsig] = '&'
		sc.nsig++
	}
	return true
}

// find is the read-only lookup of a request's endpoint (read lock); nil
// when anything on the way is new.
func (inv *Inventory) find(sc *scan, method string) *Endpoint {
	n := inv.root
	for i := 0; i < sc.n; i++ {
		if n = n.next(sc.segs[i], sc.cls[i]); n == nil {
			return nil
		}
	}
	l := n.leaf
	if l == nil || !inv.sign(sc, l, method, false) {
		return nil
	}
	return l.eps[string(sc.sig[:sc.nsig])]
}

// insert finds or creates a request's endpoint (write lock); nil when a
// bound (endpoints or nodes) is reached.
func (inv *Inventory) insert(sc *scan, method string) *Endpoint {
	n := inv.root
	for i := 0; i < sc.n; i++ {
		if n = inv.child(n, sc.segs[i], sc.cls[i]); n == nil {
			return nil
		}
	}
	l := n.leaf
	if l == nil {
		l = &leaf{node: n}
		n.leaf = l
	}
	inv.sign(sc, l, method, true)
	if ep := l.eps[string(sc.sig[:sc.nsig])]; ep != nil {
		return ep
	}
	if inv.endpoints >= inv.maxEndpoints {
		return nil
	}
	ep := &Endpoint{leaf: l, method: strings.Clone(method)}
	for i := 0; i < sc.nq; i++ {
		if q := &sc.q[i]; !q.param {
			ep.sels = append(ep.sels, selector{key: strings.Clone(q.key), value: string(sc.val(q))})
		}
	}
	ep.sig = signature(ep.method, ep.sels)
	inv.endpoints++
	inv.putEndpoint(l, ep)
	// The endpoint that holds the key now: ep, or the one it merged into
	// (then ep's counts would be lost).
	return l.eps[ep.sig]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
