package load

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/config"
	"go.yaml.in/yaml/v3"
)

// decoder walks the yaml.Node tree by hand rather than yaml.Unmarshal into Config: it
// needs the position of every value and must go on after a mistake to report them all.
type decoder struct {
	file     string
	cfg      *config.Config
	voc      *config.Vocabulary
	problems []config.Problem
	visits   int  // nodes resolved so far
	budget   int  // most visits allowed
	stop     bool // over budget: walk no further
	// failed holds the table keys whose value was rejected: they keep their default, which
	// cross checks must not hold against other values.
	failed map[string]bool
	// about maps an index of problems to the node the problem is about; secrets maps the
	// nodes of secret values to their key. Together they keep a secret out of messages
	// when an alias makes it the value of another key too (redactSecrets).
	about   map[int]*yaml.Node
	secrets map[*yaml.Node]string
	// tlsLeaf is the certificate tls.cert_file holds once the pair loaded (tlsChecks),
	// for the warnings about its dates.
	tlsLeaf *x509.Certificate
}

// valid says whether none of keys had its value rejected.
func (d *decoder) valid(keys ...string) bool {
	for _, k := range keys {
		if d.failed[k] {
			return false
		}
	}
	return true
}

func (d *decoder) fail(key string) {
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[key] = true
}

func (d *decoder) at(n *yaml.Node) config.Pos {
	return config.Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	if d.stop {
		return
	}
	if d.about == nil {
		d.about = map[int]*yaml.Node{}
	}
	d.about[len(d.problems)] = n
	d.problems = append(d.problems, config.Problem{Pos: d.at(n), Msg: fmt.Sprintf(format, args...)})
}

// parse returns the root node, nil when the document is empty or unusable.
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := safeDecode(dec, &doc); err != nil {
		if err != io.EOF {
			d.syntax(err)
		}
		return nil
	}
	// A second document is usually two configs pasted together; ignoring it would run a
	// config the operator did not read to the end.
	var extra yaml.Node
	switch err := safeDecode(dec, &extra); {
	case err == io.EOF:
	case err != nil:
		d.syntax(err)
		return nil
	default:
		d.errorf(&extra, "only one YAML document is allowed; remove this \"---\" and what follows")
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		root = doc.Content[0]
	}
	return root
}

// safeDecode turns a panic inside the YAML parser into an error: a config file must never
// crash the process (a reload keeps the last good config instead).
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax reports a parser error. The parser gives a line but no column; errors without a
// line (bad encoding, for one) are put at 1:1 so every problem has a place.
func (d *decoder) syntax(err error) {
	line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			line, msg = n, m[2]
		}
	}
	d.problems = append(d.problems, config.Problem{Pos: config.Pos{File: d.file, Line: line, Col: 1}, Msg: "bad YAML: " + msg})
}

// resolve follows aliases (*name) to the node they stand for. Every node the walk visits
// comes through here, so the walk is bounded here: without aliases a node (two bytes at
// least) is visited at most four times, which the budget allows, but nested aliases (a
// "billion laughs") can make the walk, and the problem list, explode. Past the budget it
// reports once and hands out null nodes.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	if d.visits++; d.visits > d.budget {
		if !d.stop {
			d.errorf(n, "aliases expand the document too much (more than %d nodes to check)", d.budget)
			d.stop = true
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return quote(n.Value)
	}
	return "a YAML document"
}

// quote bounds what a message repeats of a value: a pasted blob must not flood the log.
func quote(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:61]) + "..."
	}
	return strconv.Quote(s)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// name is path as the subject of a message.
func name(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

func where(path string) string {
	if path == "" {
		return "at top level"
	}
	return "in " + path
}

type pair struct{ k, v *yaml.Node }

// pairs lists the entries of mapping n with YAML merge keys ("<<: *base") expanded;
// explicit keys win over merged ones, as YAML says. Duplicate keys and keys that are not
// plain scalars are reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "a key must be a plain string %s, got %s", where(path), describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(v, path, depth)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "duplicate key %s %s (first at line %d)", quote(k.Value), where(path), first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if seen[p.k.Value] == nil {
			seen[p.k.Value] = p.k
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) merge(v *yaml.Node, path string, depth int) []pair {
	v = d.resolve(v)
	// A merge can name its own ancestor; the bound stops the loop.
	if depth > 8 {
		d.errorf(v, "%s: merge keys (<<) nested too deep, or a mapping merging itself", name(path))
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, it := range v.Content {
			for _, p := range d.merge(it, path, depth+1) {
				// Earlier sources win, as YAML says.
				if !seen[p.k.Value] {
					seen[p.k.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.errorf(v, "%s: a merge key (<<) needs a mapping or a list of mappings, got %s", name(path), describe(v))
	return nil
}

// mapping walks mapping n at path. With known set, other keys are reported as unknown
// "what"s (key, vendor, regime, ...); fn gets each accepted entry and its dotted path.
// Config.Pos records every key; a scalar value later replaces it by its own position.
func (d *decoder) mapping(n *yaml.Node, path, what string, known []string, fn func(key, sub string, k, v *yaml.Node)) {
	n = d.resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping, got %s", name(path), describe(n))
		return
	}
	for _, p := range d.pairs(n, path, 0) {
		key := p.k.Value
		if known != nil && !slices.Contains(known, key) {
			d.unknown(p.k, path, what, key, known)
			continue
		}
		sub := join(path, key)
		d.cfg.Pos[sub] = d.at(p.k)
		fn(key, sub, p.k, p.v)
	}
}

func (d *decoder) unknown(k *yaml.Node, path, what, key string, known []string) {
	list := knownList(known)
	hint := ""
	if s := suggest(key, known); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	d.errorf(k, "unknown %s %s %s (known: %s)%s", what, quote(key), where(path), list, hint)
}

// suggest returns the known name closest to a misspelt key, if it is close enough to be a
// typo rather than a different word.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	if len(key) > 64 {
		return ""
	}
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist && dist < len(k)/2+1 {
			best, bestDist = k, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns the text of a scalar value; ok is false when the value is null (unset)
// or not a scalar, the latter reported as wanting "want".
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: want %s, got %s", path, want, describe(n))
		return "", false
	}
	if isNull(n) {
		return "", false
	}
	return n.Value, true
}

// required is scalar for values that have no default: null is an error too.
func (d *decoder) required(n *yaml.Node, path, want string) (string, bool) {
	s, ok := d.scalar(n, path, want)
	if !ok && isNull(d.resolve(n)) {
		d.errorf(d.resolve(n), "%s: want %s, got nothing", path, want)
	}
	return s, ok
}

// list walks a sequence of scalars; each calls fn with its index path ("trusted_proxies.0").
func (d *decoder) list(n *yaml.Node, path, want string, fn func(i int, sub, s string, item *yaml.Node)) {
	n = d.resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list of %s, got %s", path, want, describe(n))
		return
	}
	for i, it := range n.Content {
		sub := join(path, strconv.Itoa(i))
		it = d.resolve(it)
		s, ok := d.required(it, sub, want)
		if !ok {
			continue
		}
		d.cfg.Pos[sub] = d.at(it)
		fn(i, sub, s, it)
	}
}

// setScalar decodes one value of the scalar table (shared with the environment).
func (d *decoder) setScalar(sk *scalarKey, path string, v *yaml.Node) {
	s, ok := d.scalar(v, path, sk.want)
	if !ok {
		return
	}
	v = d.resolve(v)
	secret := d.markSecret(path, v)
	if err := d.set(sk, s); err != nil {
		i := len(d.problems)
		d.errorf(v, "%s: %v", path, err)
		if secret && len(d.problems) > i {
			delete(d.about, i) // the checks of a secret never repeat it: keep the message
		}
		d.fail(path)
		return
	}
	d.cfg.Pos[path] = d.at(v)
}

// set validates s against the key's vocabulary, if it has one, and stores it.
func (d *decoder) set(sk *scalarKey, s string) error {
	if e, ok := enumKeys[sk.key]; ok {
		if err := d.checkName(s, e.what, e.names(d.voc)); err != nil {
			return err
		}
	}
	return sk.set(d.cfg, s)
}

// checkName accepts a name of the vocabulary list names.
func (d *decoder) checkName(s, what string, names []string) error {
	if !slices.Contains(names, s) {
		return fmt.Errorf("unknown %s %s (known: %s)", what, quote(s), knownList(names))
	}
	return nil
}

// setList decodes one list of the list table (shared with the environment). The list
// replaces the default even if some items are bad, so later checks see what was written.
func (d *decoder) setList(lk *listKey, path string, v *yaml.Node) {
	var items []string
	d.list(v, path, lk.want, func(_ int, sub, s string, it *yaml.Node) {
		secret := d.markSecret(sub, it)
		if err := lk.check(s); err != nil {
			i := len(d.problems)
			d.errorf(it, "%s: %v", sub, err)
			if secret && len(d.problems) > i {
				delete(d.about, i) // the checks of a secret never repeat it: keep the message
			}
		}
		items = append(items, s)
	})
	*lk.dst(d.cfg) = items
}

// problemAt reports at a recorded position, for checks that span several values.
func (d *decoder) problemAt(key string, format string, args ...any) {
	pos, ok := d.cfg.Pos[key]
	if !ok {
		pos = config.Pos{File: d.file, Line: 1, Col: 1}
	}
	d.problems = append(d.problems, config.Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// problemAtFirst reports at the first of keys that has a recorded position: the value at
// fault, or when that is a default, the value it conflicts with.
func (d *decoder) problemAtFirst(keys []string, format string, args ...any) {
	for _, k := range keys {
		if _, ok := d.cfg.Pos[k]; ok {
			d.problemAt(k, format, args...)
			return
		}
	}
	d.problemAt(keys[0], format, args...)
}

// ifDefault marks a value in a message as the built-in default, which the operator may not
// know they are running on.
func (d *decoder) ifDefault(key string) string {
	if _, ok := d.cfg.Pos[key]; ok {
		return ""
	}
	return " (the default)"
}
