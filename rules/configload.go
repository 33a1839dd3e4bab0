package rules

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration. Pos is the key or value at fault; for a
// CONSENTGATE_* environment variable it is Pos{File: "$CONSENTGATE_X"} with no line.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) String() string {
	switch {
	case p.Pos.Line > 0:
		return p.Pos.File + ":" + itoa(p.Pos.Line) + ":" + itoa(p.Pos.Col) + ": " + p.Msg
	case p.Pos.File != "":
		return p.Pos.File + ": " + p.Msg
	}
	return p.Msg
}

// ConfigError lists every problem of a configuration, so an operator fixes them in one
// round instead of one restart per mistake.
type ConfigError struct{ Problems []Problem }

// Error has one line per problem, "FILE:LINE:COL: message", by line and column; problems
// from the environment follow, as "$CONSENTGATE_X: message".
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads, decodes and validates a config file, then applies CONSENTGATE_* environment
// overrides. On failure it returns a *ConfigError listing every problem found, each at the
// file:line:col of the offending key or value. Relative paths in the file (geo.database)
// are relative to the working directory, as they would be on the command line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if pe, ok := err.(*fs.PathError); ok {
			msg = "cannot read config: " + pe.Err.Error()
		}
		return nil, &ConfigError{Problems: []Problem{{Pos: Pos{File: path}, Msg: msg}}}
	}
	return LoadBytes(path, data)
}

// LoadBytes is Load on in-memory YAML; name is the file name used in positions.
func LoadBytes(name string, data []byte) (*Config, error) {
	return load(name, data, getenv)
}

// Default returns the built-in defaults, what `consentgate serve` runs on without
// --config, with CONSENTGATE_* environment overrides applied.
func Default() (*Config, error) {
	return load("(default)", nil, getenv)
}

// defaultConfig holds the documented defaults; decoding overwrites what the file sets, so
// an explicit value (even a bad one, such as 0s) is never mistaken for "unset".
func defaultConfig() *Config {
	return &Config{
		Listen:       ":8080",
		AdminListen:  "127.0.0.1:9090",
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxBodySize:  64 << 10,
		LogLevel:     "info",
		Geo:          GeoConfig{UnknownRegime: "opt_in"},
		Consent: ConsentConfig{
			Store:        "memory",
			OnStoreError: "deny",
			Cookie:       "cg_id",
			TTL:          395 * day,
			MaxEntries:   1_000_000,
			Redis:        RedisConfig{Timeout: 5 * time.Millisecond, KeyPrefix: "consentgate:"},
			Cache:        ConsentCacheConfig{TTL: 5 * time.Second, NegativeTTL: time.Second, MaxEntries: 100_000},
			Receipts:     ReceiptsConfig{MaxLen: 100, TTL: 790 * day},
		},
		Upstream: UpstreamConfig{Timeout: 5 * time.Second, MaxConns: 512},
		Telemetry: TelemetryConfig{
			OTLP:   OTLPConfig{Interval: 30 * time.Second},
			Traces: TracesConfig{SampleRatio: 0.01},
		},
		Pos: map[string]Pos{},
	}
}

func load(name string, data []byte, env func(string) string) (*Config, error) {
	d := &decoder{file: name, cfg: defaultConfig(), budget: 10_000 + 4*len(data)}
	if root := d.parse(data); root != nil {
		d.top(root)
	}
	d.applyEnv(env)
	d.crossChecks()
	d.redactSecrets()
	if len(d.problems) > 0 {
		return nil, &ConfigError{Problems: sortProblems(d.problems)}
	}
	return d.cfg, nil
}

// sortProblems orders by line and column (then message), environment problems last by
// variable, and drops repeats (a value reached through several aliases is reported once).
func sortProblems(ps []Problem) []Problem {
	slices.SortFunc(ps, func(a, b Problem) int {
		if (a.Pos.Line == 0) != (b.Pos.Line == 0) {
			if a.Pos.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.Compact(ps)
}

// decoder walks the yaml.Node tree by hand rather than yaml.Unmarshal into Config: it
// needs the position of every value and must go on after a mistake to report them all.
type decoder struct {
	file     string
	cfg      *Config
	problems []Problem
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
}

// secretKeys are the values no message may repeat.
var secretKeys = []string{"admin_token", "anonymise.secret", "consent.redis.password"}

// redactSecrets rewrites the problems about a node that is also a secret's value: with
// "password: &p ..." and "db: *p", the db error would quote the password.
func (d *decoder) redactSecrets() {
	for i, n := range d.about {
		if key, ok := d.secrets[n]; ok {
			d.problems[i].Msg = fmt.Sprintf("bad value, not repeated because it is also %s (through a YAML anchor and alias); give %s a value of its own", key, key)
		}
	}
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

func (d *decoder) at(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	if d.stop {
		return
	}
	if d.about == nil {
		d.about = map[int]*yaml.Node{}
	}
	d.about[len(d.problems)] = n
	d.problems = append(d.problems, Problem{Pos: d.at(n), Msg: fmt.Sprintf(format, args...)})
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
	d.problems = append(d.problems, Problem{Pos: Pos{File: d.file, Line: line, Col: 1}, Msg: "bad YAML: " + msg})
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
	secret := slices.Contains(secretKeys, path)
	if secret {
		if d.secrets == nil {
			d.secrets = map[*yaml.Node]string{}
		}
		d.secrets[v] = path
	}
	if err := sk.set(d.cfg, s); err != nil {
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

// setList decodes one list of the list table (shared with the environment). The list
// replaces the default even if some items are bad, so later checks see what was written.
func (d *decoder) setList(lk *listKey, path string, v *yaml.Node) {
	var items []string
	d.list(v, path, lk.want, func(_ int, sub, s string, it *yaml.Node) {
		if err := lk.check(s); err != nil {
			d.errorf(it, "%s: %v", sub, err)
		}
		items = append(items, s)
	})
	*lk.dst(d.cfg) = items
}

// problemAt reports at a recorded position, for checks that span several values.
func (d *decoder) problemAt(key string, format string, args ...any) {
	pos, ok := d.cfg.Pos[key]
	if !ok {
		pos = Pos{File: d.file, Line: 1, Col: 1}
	}
	d.problems = append(d.problems, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
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

// redisChecks are the rules among consent.redis values. Only addrs depends on the store:
// the rest is checked with store: memory too, so that switching stores by
// CONSENTGATE_CONSENT_STORE cannot reveal a broken section.
func (d *decoder) redisChecks() {
	c := &d.cfg.Consent
	r := &c.Redis
	if c.Store == "redis" && len(r.Addrs) == 0 {
		// At the empty list if one was written, else at "store: redis".
		if _, ok := d.cfg.Pos["consent.redis.addrs"]; ok {
			d.problemAt("consent.redis.addrs", "consent.redis.addrs: want at least one host:port with consent.store: redis, e.g. [\"127.0.0.1:6379\"]")
		} else {
			d.problemAt("consent.store", "consent.store: \"redis\" needs consent.redis.addrs, e.g. addrs: [\"127.0.0.1:6379\"]")
		}
	}
	first := map[string]int{}
	for i, a := range r.Addrs {
		if j, dup := first[a]; dup {
			sub := "consent.redis.addrs." + strconv.Itoa(i)
			d.problemAtFirst([]string{sub, "consent.redis.addrs"}, "%s: listed twice (also consent.redis.addrs.%d)", sub, j)
			continue
		}
		first[a] = i
	}
	if r.Cluster && r.MasterName != "" { // both valid: a rejected value stays at its default, false or ""
		d.problemAtFirst([]string{"consent.redis.cluster", "consent.redis.master_name"},
			"consent.redis.cluster: true excludes consent.redis.master_name (Sentinel): remove one of them")
	}
	// Redis Cluster has database 0 only, and the client (go-redis) drops db there silently:
	// the proxy would not use the database the site's backend was told about.
	if cluster := r.Cluster || len(r.Addrs) > 1 && r.MasterName == ""; cluster && r.DB != 0 &&
		d.valid("consent.redis.cluster", "consent.redis.master_name") {
		why := "with cluster: true: Redis Cluster has database 0 only"
		if !r.Cluster {
			why = "here: several addrs without master_name mean Redis Cluster, which has database 0 only (for Sentinel, set master_name)"
		}
		d.problemAt("consent.redis.db", "consent.redis.db: must be 0 %s", why)
	}
	if r.PoolSize > 0 && r.MinIdleConns > r.PoolSize && d.valid("consent.redis.pool_size") {
		d.problemAtFirst([]string{"consent.redis.min_idle_conns", "consent.redis.pool_size"},
			"consent.redis.min_idle_conns: %d is more than consent.redis.pool_size (%d)", r.MinIdleConns, r.PoolSize)
	}
}

// crossChecks are the rules that involve several values, run once file and environment
// have both been applied.
func (d *decoder) crossChecks() {
	c := &d.cfg.Consent
	// Browsers silently refuse prefixed cookies that break the prefix rules: the consent
	// cookie would never be stored and every visitor would look new on every hit.
	switch {
	case strings.HasPrefix(c.Cookie, "__Host-") && (!c.Secure || c.CookieDomain != ""):
		d.problemAt("consent.cookie", "consent.cookie: a __Host- cookie needs consent.secure: true and no consent.cookie_domain, or browsers drop it")
	case strings.HasPrefix(c.Cookie, "__Secure-") && !c.Secure:
		d.problemAt("consent.cookie", "consent.cookie: a __Secure- cookie needs consent.secure: true, or browsers drop it")
	}
	d.redisChecks()
	// A cached "no consent stored" is what a missed invalidation keeps wrong the longest
	// after a visitor consents; it is meant to expire first.
	if k := &c.Cache; k.NegativeTTL > k.TTL && d.valid("consent.cache.negative_ttl", "consent.cache.ttl") {
		d.problemAtFirst([]string{"consent.cache.negative_ttl", "consent.cache.ttl"},
			"consent.cache.negative_ttl: %s%s is more than consent.cache.ttl (%s)",
			fmtDuration(k.NegativeTTL), d.ifDefault("consent.cache.negative_ttl"), fmtDuration(k.TTL))
	}
	// Receipts are the proof of consent (GDPR Art. 7(1)): they must be kept at least as
	// long as the consent they prove is acted on.
	if r := &c.Receipts; r.TTL < c.TTL && d.valid("consent.receipts.ttl", "consent.ttl") {
		d.problemAtFirst([]string{"consent.receipts.ttl", "consent.ttl"},
			"consent.receipts.ttl: %s%s is less than consent.ttl (%s): the proof of a consent must outlive the consent",
			fmtDuration(r.TTL), d.ifDefault("consent.receipts.ttl"), fmtDuration(c.TTL))
	}
	// Replacing the built-in jurisdictions with nothing puts every visitor in "other",
	// where no consent rules apply: fail closed rather than track Europe without consent.
	if j := d.cfg.Jurisdictions; j.Replace && len(j.Groups) == 0 {
		d.problemAt("jurisdictions.replace", "jurisdictions.replace: true with no groups would apply no consent rules anywhere; configure jurisdictions.groups")
	}
}

// Keys of each mapping, in config.go order; a test checks them against the yaml tags.
var (
	topKeys = []string{"listen", "admin_listen", "admin_token", "trusted_proxies", "read_timeout",
		"write_timeout", "max_body_size", "allowed_origins", "log_level", "geo", "jurisdictions",
		"consent", "upstream", "upstreams", "anonymise", "policy", "routes", "signals", "telemetry"}
	geoKeys           = []string{"database", "unknown_regime"}
	jurisdictionsKeys = []string{"replace", "groups"}
	groupKeys         = []string{"regime", "codes", "gpc"}
	consentKeys       = []string{"store", "on_store_error", "cookie", "cookie_domain", "secure", "ttl", "max_entries",
		"redis", "cache", "receipts"}
	redisKeys = []string{"addrs", "username", "password", "db", "tls", "cluster", "master_name", "timeout",
		"pool_size", "min_idle_conns", "key_prefix"}
	consentCacheKeys = []string{"ttl", "negative_ttl", "max_entries"}
	receiptsKeys     = []string{"max_len", "ttl"}
	upstreamKeys     = []string{"timeout", "max_conns"}
	anonymiseKeys    = []string{"secret", "url_params", "allow"}
	routeKeys        = []string{"path", "host", "endpoint", "disabled"}
	signalsKeys      = []string{"tcf", "cmp"}
	tcfKeys          = []string{"purposes", "vendors"}
	cmpKeys          = []string{"use_as_state", "onetrust_groups"}
	telemetryKeys    = []string{"otlp", "traces", "decision_log"}
	otlpKeys         = []string{"endpoint", "headers", "interval"}
	tracesKeys       = []string{"enabled", "sample_ratio"}
	decisionLogKeys  = []string{"sample_ratio"}
)

// catalogue is what vendor and endpoint names are checked against. Tests swap it so that
// they do not depend on what the built-in catalogue holds at the time.
var catalogue = struct {
	vendors   func() []string
	endpoint  func(name string) bool
	endpoints func() []string
}{
	vendors:  VendorNames,
	endpoint: func(name string) bool { _, ok := EndpointByName(name); return ok },
	endpoints: func() []string {
		var names []string
		for _, ep := range Builtin() {
			names = append(names, ep.Name)
		}
		return names
	},
}

// knownVendors is never nil: mapping takes a nil list as "any name", and an empty
// catalogue must accept no vendor, not every one.
func knownVendors() []string {
	if v := catalogue.vendors(); v != nil {
		return v
	}
	return []string{}
}

func (d *decoder) top(root *yaml.Node) {
	d.mapping(root, "", "key", topKeys, func(key, sub string, k, v *yaml.Node) {
		if d.table(sub, v) {
			return
		}
		switch key {
		case "geo":
			d.mapping(v, sub, "key", geoKeys, d.tableOnly)
		case "consent":
			d.mapping(v, sub, "key", consentKeys, func(key, sub string, _, v *yaml.Node) {
				if d.table(sub, v) {
					return
				}
				switch key {
				case "redis":
					d.mapping(v, sub, "key", redisKeys, d.tableOnly)
				case "cache":
					d.mapping(v, sub, "key", consentCacheKeys, d.tableOnly)
				case "receipts":
					d.mapping(v, sub, "key", receiptsKeys, d.tableOnly)
				}
			})
		case "upstream":
			d.mapping(v, sub, "key", upstreamKeys, d.tableOnly)
		case "jurisdictions":
			d.mapping(v, sub, "key", jurisdictionsKeys, func(key, sub string, _, v *yaml.Node) {
				if !d.table(sub, v) {
					d.groups(sub, v)
				}
			})
		case "anonymise":
			d.mapping(v, sub, "key", anonymiseKeys, func(key, sub string, _, v *yaml.Node) {
				if !d.table(sub, v) {
					d.allow(sub, v)
				}
			})
		case "upstreams":
			d.upstreams(sub, v)
		case "policy":
			d.policy(sub, v)
		case "routes":
			d.routes(sub, v)
		case "signals":
			d.signals(sub, v)
		case "telemetry":
			d.telemetry(sub, v)
		}
	})
}

// table decodes v if path is in the scalar or list table, and says whether it was.
func (d *decoder) table(path string, v *yaml.Node) bool {
	for i := range scalarKeys {
		if scalarKeys[i].key == path {
			d.setScalar(&scalarKeys[i], path, v)
			return true
		}
	}
	for i := range listKeys {
		if listKeys[i].key == path {
			d.setList(&listKeys[i], path, v)
			return true
		}
	}
	return false
}

// tableOnly is the entry handler of sections made only of table values.
func (d *decoder) tableOnly(_, sub string, _, v *yaml.Node) {
	if !d.table(sub, v) {
		panic("rules: config key " + sub + " has no decoder") // caught by TestConfigKeys
	}
}

// groups decodes jurisdictions.groups: name → {regime, codes, gpc}.
func (d *decoder) groups(path string, n *yaml.Node) {
	type owner struct {
		group string
		node  *yaml.Node
	}
	owners := map[string]owner{}
	d.mapping(n, path, "group", nil, func(name, gpath string, k, v *yaml.Node) {
		switch {
		case name == "other" || name == "unknown":
			d.errorf(k, "%s: group name %q is reserved (it names locations in no group)", path, name)
		case !groupNameRE.MatchString(name):
			d.errorf(k, "%s: bad group name %s: want ^[a-z][a-z0-9_-]{0,31}$ (it labels metrics)", path, quote(name))
		}
		var g JurisdictionGroup
		has := map[string]bool{}
		d.mapping(v, gpath, "key", groupKeys, func(key, sub string, _, v *yaml.Node) {
			has[key] = true
			switch key {
			case "regime":
				s, ok := d.required(v, sub, "a regime (opt_in, opt_out, none)")
				if !ok {
					return
				}
				d.cfg.Pos[sub] = d.at(d.resolve(v))
				if err := checkRegime(s); err != nil {
					d.errorf(d.resolve(v), "%s: %v", sub, err)
				}
				g.Regime = s
			case "codes":
				d.list(v, sub, "ISO 3166 codes", func(_ int, csub, code string, it *yaml.Node) {
					if !codeRE.MatchString(code) {
						d.errorf(it, "%s: bad code %s: want ISO 3166 \"DE\" or \"US-CA\" (upper case)", csub, quote(code))
						return
					}
					if prev, dup := owners[code]; dup {
						d.errorf(it, "%s: code %q is already in group %q at line %d; a place belongs to one group", csub, code, prev.group, prev.node.Line)
						return
					}
					owners[code] = owner{name, it}
					g.Codes = append(g.Codes, code)
				})
				if rv := d.resolve(v); isNull(rv) || rv.Kind == yaml.SequenceNode && len(rv.Content) == 0 {
					d.errorf(rv, "%s: want at least one code", sub)
				}
			case "gpc":
				s, ok := d.scalar(v, sub, "true or false")
				if !ok {
					return
				}
				b, err := parseBool(s)
				if err != nil {
					d.errorf(d.resolve(v), "%s: %v", sub, err)
					return
				}
				d.cfg.Pos[sub] = d.at(d.resolve(v))
				g.GPC = &b
			}
		})
		switch rv := d.resolve(v); {
		case isNull(rv):
			d.errorf(k, "%s: want a mapping with regime and codes, got nothing", gpath)
		case rv.Kind == yaml.MappingNode:
			if !has["regime"] {
				d.errorf(k, "%s: regime is required (opt_in, opt_out or none)", gpath)
			}
			if !has["codes"] {
				d.errorf(k, "%s: codes are required, e.g. codes: [DE, AT]", gpath)
			}
		}
		if d.cfg.Jurisdictions.Groups == nil {
			d.cfg.Jurisdictions.Groups = map[string]JurisdictionGroup{}
		}
		d.cfg.Jurisdictions.Groups[name] = g
	})
}

var (
	groupNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	codeRE      = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
)

// signals decodes the signals section: TCF mapping and CMP cookies.
func (d *decoder) signals(path string, n *yaml.Node) {
	d.mapping(n, path, "key", signalsKeys, func(key, sub string, _, v *yaml.Node) {
		switch key {
		case "tcf":
			d.mapping(v, sub, "key", tcfKeys, func(key, sub string, _, v *yaml.Node) {
				switch key {
				case "purposes":
					d.tcfPurposes(sub, v)
				case "vendors":
					d.tcfVendors(sub, v)
				}
			})
		case "cmp":
			d.mapping(v, sub, "key", cmpKeys, func(key, sub string, _, v *yaml.Node) {
				if d.table(sub, v) {
					return
				}
				d.oneTrustGroups(sub, v)
			})
		}
	})
}

// tcfPurposes decodes purpose → TCF purpose IDs.
func (d *decoder) tcfPurposes(path string, n *yaml.Node) {
	d.mapping(n, path, "purpose", purposeNames(), func(purpose, sub string, _, v *yaml.Node) {
		ids := []int{} // named with an empty list: TCF says nothing about the purpose
		d.list(v, sub, "TCF purpose IDs (1..11)", func(_ int, isub, s string, it *yaml.Node) {
			id, err := strconv.Atoi(s)
			if err != nil || id < 1 || id > 11 {
				d.errorf(it, "%s: want a TCF purpose ID from 1 to 11, got %s", isub, quote(s))
				return
			}
			if slices.Contains(ids, id) {
				d.errorf(it, "%s: TCF purpose %d is listed twice", isub, id)
				return
			}
			ids = append(ids, id)
		})
		if d.cfg.Signals.TCF.Purposes == nil {
			d.cfg.Signals.TCF.Purposes = map[string][]int{}
		}
		d.cfg.Signals.TCF.Purposes[purpose] = ids
	})
}

// tcfVendors decodes vendor → GVL ID.
func (d *decoder) tcfVendors(path string, n *yaml.Node) {
	d.mapping(n, path, "vendor", knownVendors(), func(vendor, sub string, _, v *yaml.Node) {
		s, ok := d.required(v, sub, "a Global Vendor List ID")
		if !ok {
			return
		}
		id, err := strconv.Atoi(s)
		if err != nil || id < 0 || id > 65535 {
			d.errorf(d.resolve(v), "%s: want a Global Vendor List ID from 1 to 65535 (0 = not on the GVL), got %s", sub, quote(s))
			return
		}
		if d.cfg.Signals.TCF.Vendors == nil {
			d.cfg.Signals.TCF.Vendors = map[string]int{}
		}
		d.cfg.Signals.TCF.Vendors[vendor] = id
	})
}

var oneTrustGroupRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// oneTrustGroups decodes OneTrust group ID → purpose.
func (d *decoder) oneTrustGroups(path string, n *yaml.Node) {
	groups := map[string]string{}
	d.mapping(n, path, "group", nil, func(group, sub string, k, v *yaml.Node) {
		if !oneTrustGroupRE.MatchString(group) {
			d.errorf(k, "%s: a OneTrust group ID is letters, digits, _ and -, e.g. C0002; got %s", sub, quote(group))
			return
		}
		s, ok := d.required(v, sub, "a purpose")
		if !ok {
			return
		}
		if _, ok := consent.ParsePurpose(s); !ok {
			d.errorf(d.resolve(v), "%s: want a purpose (%s), got %s", sub, knownList(purposeNames()), quote(s))
			return
		}
		groups[group] = s
	})
	d.cfg.Signals.CMP.OneTrustGroups = groups
}

// telemetry decodes the telemetry section.
func (d *decoder) telemetry(path string, n *yaml.Node) {
	d.mapping(n, path, "key", telemetryKeys, func(key, sub string, _, v *yaml.Node) {
		switch key {
		case "otlp":
			d.mapping(v, sub, "key", otlpKeys, func(key, sub string, _, v *yaml.Node) {
				if d.table(sub, v) {
					return
				}
				d.otlpHeaders(sub, v)
			})
		case "traces":
			d.mapping(v, sub, "key", tracesKeys, d.tableOnly)
		case "decision_log":
			d.mapping(v, sub, "key", decisionLogKeys, d.tableOnly)
		}
	})
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

// otlpHeaders decodes header name → value. Values may be secrets (API keys): no message
// repeats one.
func (d *decoder) otlpHeaders(path string, n *yaml.Node) {
	headers := map[string]string{}
	d.mapping(n, path, "header", nil, func(h, sub string, k, v *yaml.Node) {
		if !headerNameRE.MatchString(h) {
			d.errorf(k, "%s: %s is not an HTTP header name", sub, quote(h))
			return
		}
		s, ok := d.scalar(v, sub, "a header value")
		if !ok {
			return
		}
		if strings.ContainsAny(s, "\r\n") {
			d.errorf(d.resolve(v), "%s: a header value cannot contain a line break", sub)
			return
		}
		headers[h] = s
	})
	d.cfg.Telemetry.OTLP.Headers = headers
}

// upstreams decodes vendor → base URL.
func (d *decoder) upstreams(path string, n *yaml.Node) {
	d.mapping(n, path, "vendor", knownVendors(), func(vendor, sub string, _, v *yaml.Node) {
		s, ok := d.required(v, sub, "an http(s) URL")
		if !ok {
			return
		}
		v = d.resolve(v)
		d.cfg.Pos[sub] = d.at(v)
		if err := checkUpstreamURL(s); err != nil {
			d.errorf(v, "%s: %v", sub, err)
			return
		}
		if d.cfg.Upstreams == nil {
			d.cfg.Upstreams = map[string]string{}
		}
		d.cfg.Upstreams[vendor] = s
	})
}

// allow decodes anonymise.allow: vendor → parameter names.
func (d *decoder) allow(path string, n *yaml.Node) {
	d.mapping(n, path, "vendor", knownVendors(), func(vendor, sub string, _, v *yaml.Node) {
		var names []string
		d.list(v, sub, "parameter names", func(_ int, psub, s string, it *yaml.Node) {
			if err := checkParamName(s); err != nil {
				d.errorf(it, "%s: %v", psub, err)
				return
			}
			names = append(names, s)
		})
		if d.cfg.Anonymise.Allow == nil {
			d.cfg.Anonymise.Allow = map[string][]string{}
		}
		d.cfg.Anonymise.Allow[vendor] = names
	})
}

// policy decodes regime → status → purpose → action, for all vendors and under vendors.
func (d *decoder) policy(path string, n *yaml.Node) {
	known := append(slices.Clone(regimeNames()), "vendors")
	d.mapping(n, path, "regime", known, func(key, sub string, _, v *yaml.Node) {
		if key == "vendors" {
			d.mapping(v, sub, "vendor", knownVendors(), func(vendor, vsub string, _, v *yaml.Node) {
				if d.cfg.Policy.Vendors == nil {
					d.cfg.Policy.Vendors = map[string]PolicyTable{}
				}
				t := d.cfg.Policy.Vendors[vendor]
				if t == nil {
					t = PolicyTable{}
					d.cfg.Policy.Vendors[vendor] = t
				}
				d.mapping(v, vsub, "regime", regimeNames(), func(regime, rsub string, _, v *yaml.Node) {
					d.policyRegime(t, regime, rsub, v)
				})
			})
			return
		}
		if d.cfg.Policy.Table == nil {
			d.cfg.Policy.Table = PolicyTable{}
		}
		d.policyRegime(d.cfg.Policy.Table, key, sub, v)
	})
}

func (d *decoder) policyRegime(t PolicyTable, regime, path string, n *yaml.Node) {
	d.mapping(n, path, "status", statusNames(), func(status, ssub string, _, v *yaml.Node) {
		d.mapping(v, ssub, "purpose", purposeNames(), func(purpose, psub string, _, v *yaml.Node) {
			s, ok := d.required(v, psub, "an action (forward, anonymise, drop)")
			if !ok {
				return
			}
			v = d.resolve(v)
			d.cfg.Pos[psub] = d.at(v)
			if _, ok := ParseAction(s); !ok {
				d.errorf(v, "%s: unknown action %s (known: %s)", psub, quote(s), strings.Join(ActionNames(), ", "))
				return
			}
			if t[regime] == nil {
				t[regime] = map[string]map[string]string{}
			}
			if t[regime][status] == nil {
				t[regime][status] = map[string]string{}
			}
			t[regime][status][purpose] = s
		})
	})
}

func regimeNames() []string { return geo.RegimeNames() }

func statusNames() []string {
	names := make([]string, consent.NumStatuses)
	for s := range consent.NumStatuses {
		names[s] = s.String()
	}
	return names
}

func purposeNames() []string { return consent.PurposeNames() }

// routes decodes the route list; each route's Pos is its list item.
func (d *decoder) routes(path string, n *yaml.Node) {
	n = d.resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list of routes, got %s", path, describe(n))
		return
	}
	type seen struct {
		index int
		line  int
	}
	firsts := map[string]seen{}
	for i, item := range n.Content {
		item = d.resolve(item)
		sub := join(path, strconv.Itoa(i))
		if item.Kind != yaml.MappingNode {
			d.errorf(item, "%s: want a mapping with path and endpoint, got %s", sub, describe(item))
			continue
		}
		d.cfg.Pos[sub] = d.at(item)
		r := RouteConfig{Pos: d.at(item)}
		var pathOK bool
		var endpointNode *yaml.Node
		has := map[string]bool{}
		d.mapping(item, sub, "key", routeKeys, func(key, ksub string, _, v *yaml.Node) {
			has[key] = true
			var s string
			var ok bool
			if key == "disabled" {
				s, ok = d.scalar(v, ksub, "true or false")
			} else {
				s, ok = d.required(v, ksub, "a string")
			}
			if !ok {
				return
			}
			v = d.resolve(v)
			d.cfg.Pos[ksub] = d.at(v)
			var err error
			switch key {
			case "path":
				if err = checkRoutePath(s); err == nil {
					r.Path, pathOK = s, true
				}
			case "host":
				if err = checkRouteHost(s); err == nil {
					r.Host = s
				}
			case "endpoint":
				r.Endpoint, endpointNode = s, v
			case "disabled":
				r.Disabled, err = parseBool(s)
			}
			if err != nil {
				d.errorf(v, "%s: %v", ksub, err)
			}
		})
		if !has["path"] {
			d.errorf(item, "%s: path is required", sub)
		}
		switch {
		case r.Disabled && endpointNode != nil:
			d.errorf(endpointNode, "%s.endpoint: a disabled route removes the built-in route of its path and names no endpoint", sub)
		case !r.Disabled && !has["endpoint"]:
			d.errorf(item, "%s: endpoint is required (or disabled: true to remove a built-in route)", sub)
		case !r.Disabled && endpointNode != nil && !catalogue.endpoint(r.Endpoint):
			d.errorf(endpointNode, "%s.endpoint: unknown endpoint %s (known: %s)", sub, quote(r.Endpoint), knownList(catalogue.endpoints()))
		}
		if pathOK {
			key := strings.ToLower(r.Host) + " " + r.Path
			if first, dup := firsts[key]; dup {
				d.errorf(item, "%s: same host and path as %s.%d (line %d)", sub, path, first.index, first.line)
			} else {
				firsts[key] = seen{i, item.Line}
			}
		}
		d.cfg.Routes = append(d.cfg.Routes, r)
	}
}

func knownList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

const day = 24 * time.Hour

// maxTTL caps consent.ttl at 25 months: the longest consent lifetime data-protection
// authorities accept (CNIL, for one, expects consent to be asked again after 13 months,
// the default). A consent record kept longer is no longer proof of consent.
const maxTTL = 760 * day

// maxReceiptsTTL caps consent.receipts.ttl at ten years: proof of consent is kept for as
// long as a claim about it can be brought, not forever.
const maxReceiptsTTL = 3650 * day

// scalarKey is a config value written as one YAML scalar. The file and the environment
// both set it through set, so a value is validated the same way wherever it comes from.
type scalarKey struct {
	key  string // dotted YAML key
	want string // what a good value looks like, for "want X, got Y"
	set  func(c *Config, s string) error
}

// listKey is a list of scalars, each checked alone.
type listKey struct {
	key   string
	want  string
	check func(s string) error
	dst   func(c *Config) *[]string
}

var scalarKeys = []scalarKey{
	{"listen", "host:port", func(c *Config, s string) error { return setString(&c.Listen, s, checkHostPort) }},
	{"admin_listen", "host:port", func(c *Config, s string) error { return setString(&c.AdminListen, s, checkHostPort) }},
	{"admin_token", "a token", func(c *Config, s string) error { return setString(&c.AdminToken, s, checkAdminToken) }},
	{"read_timeout", "a duration", func(c *Config, s string) error { return setDuration(&c.ReadTimeout, s, 0) }},
	{"write_timeout", "a duration", func(c *Config, s string) error { return setDuration(&c.WriteTimeout, s, 0) }},
	{"max_body_size", "a number of bytes", func(c *Config, s string) error {
		return setInt(&c.MaxBodySize, s, 1<<10, 10<<20, " (1 KiB..10 MiB)")
	}},
	{"log_level", "a log level", func(c *Config, s string) error { return setString(&c.LogLevel, s, checkLogLevel) }},
	{"geo.database", "a file path", func(c *Config, s string) error { return setString(&c.Geo.Database, s, checkDatabase) }},
	{"geo.unknown_regime", "a regime", func(c *Config, s string) error { return setString(&c.Geo.UnknownRegime, s, checkRegime) }},
	{"jurisdictions.replace", "true or false", func(c *Config, s string) error { return setBool(&c.Jurisdictions.Replace, s) }},
	{"consent.store", "a store name", func(c *Config, s string) error { return setString(&c.Consent.Store, s, checkStore) }},
	{"consent.on_store_error", "deny or unset", func(c *Config, s string) error {
		return setString(&c.Consent.OnStoreError, s, checkOnStoreError)
	}},
	{"consent.cookie", "a cookie name", func(c *Config, s string) error { return setString(&c.Consent.Cookie, s, checkCookieName) }},
	{"consent.cookie_domain", "a domain", func(c *Config, s string) error {
		return setString(&c.Consent.CookieDomain, s, checkCookieDomain)
	}},
	{"consent.secure", "true or false", func(c *Config, s string) error { return setBool(&c.Consent.Secure, s) }},
	{"consent.ttl", "a duration", func(c *Config, s string) error { return setDuration(&c.Consent.TTL, s, maxTTL) }},
	{"consent.max_entries", "a number", func(c *Config, s string) error {
		return setInt(&c.Consent.MaxEntries, s, 1000, maxInt, "")
	}},
	// The password is taken as written: no check, so no message can repeat it.
	{"consent.redis.username", "a user name", func(c *Config, s string) error { c.Consent.Redis.Username = s; return nil }},
	{"consent.redis.password", "a password", func(c *Config, s string) error { c.Consent.Redis.Password = s; return nil }},
	{"consent.redis.db", "a database number", func(c *Config, s string) error { return setInt(&c.Consent.Redis.DB, s, 0, 15, "") }},
	{"consent.redis.tls", "true or false", func(c *Config, s string) error { return setBool(&c.Consent.Redis.TLS, s) }},
	{"consent.redis.cluster", "true or false", func(c *Config, s string) error { return setBool(&c.Consent.Redis.Cluster, s) }},
	{"consent.redis.master_name", "a Sentinel master name", func(c *Config, s string) error {
		return setString(&c.Consent.Redis.MasterName, s, checkMasterName)
	}},
	{"consent.redis.timeout", "a duration", func(c *Config, s string) error {
		return setDurationIn(&c.Consent.Redis.Timeout, s, time.Millisecond, 10*time.Second)
	}},
	{"consent.redis.pool_size", "a number", func(c *Config, s string) error {
		return setInt(&c.Consent.Redis.PoolSize, s, 0, 10_000, " (0 = the client's default, 10 per CPU)")
	}},
	{"consent.redis.min_idle_conns", "a number", func(c *Config, s string) error {
		return setInt(&c.Consent.Redis.MinIdleConns, s, 0, 10_000, "")
	}},
	{"consent.redis.key_prefix", "a key prefix", func(c *Config, s string) error {
		return setString(&c.Consent.Redis.KeyPrefix, s, checkKeyPrefix)
	}},
	{"consent.cache.ttl", "a duration", func(c *Config, s string) error {
		return setDurationIn(&c.Consent.Cache.TTL, s, 0, time.Hour)
	}},
	{"consent.cache.negative_ttl", "a duration", func(c *Config, s string) error {
		return setDurationIn(&c.Consent.Cache.NegativeTTL, s, 0, time.Hour)
	}},
	{"consent.cache.max_entries", "a number", func(c *Config, s string) error {
		return setInt(&c.Consent.Cache.MaxEntries, s, 1000, maxInt, "")
	}},
	{"consent.receipts.max_len", "a number", func(c *Config, s string) error {
		return setInt(&c.Consent.Receipts.MaxLen, s, 1, 10_000, "")
	}},
	{"consent.receipts.ttl", "a duration", func(c *Config, s string) error {
		return setDurationIn(&c.Consent.Receipts.TTL, s, 0, maxReceiptsTTL)
	}},
	{"upstream.timeout", "a duration", func(c *Config, s string) error { return setDuration(&c.Upstream.Timeout, s, 0) }},
	{"upstream.max_conns", "a number", func(c *Config, s string) error {
		return setInt(&c.Upstream.MaxConns, s, 1, 100_000, "")
	}},
	{"anonymise.secret", "a secret", func(c *Config, s string) error { return setString(&c.Anonymise.Secret, s, checkAnonymiseSecret) }},
	{"signals.cmp.use_as_state", "true or false", func(c *Config, s string) error { return setBool(&c.Signals.CMP.UseAsState, s) }},
	{"telemetry.otlp.endpoint", "an http(s) URL", func(c *Config, s string) error {
		return setString(&c.Telemetry.OTLP.Endpoint, s, checkOTLPEndpoint)
	}},
	{"telemetry.otlp.interval", "a duration", func(c *Config, s string) error {
		return setDurationIn(&c.Telemetry.OTLP.Interval, s, time.Second, time.Hour)
	}},
	{"telemetry.traces.enabled", "true or false", func(c *Config, s string) error { return setBool(&c.Telemetry.Traces.Enabled, s) }},
	{"telemetry.traces.sample_ratio", "a ratio from 0 to 1", func(c *Config, s string) error {
		return setRatio(&c.Telemetry.Traces.SampleRatio, s)
	}},
	{"telemetry.decision_log.sample_ratio", "a ratio from 0 to 1", func(c *Config, s string) error {
		return setRatio(&c.Telemetry.DecisionLog.SampleRatio, s)
	}},
}

// setRatio parses a share from 0 to 1.
func setRatio(dst *float64, s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return fmt.Errorf("want a ratio from 0 to 1, e.g. 0.01, got %s", quote(s))
	}
	*dst = f
	return nil
}

// checkOTLPEndpoint accepts an OTLP/HTTP base URL (http or https, a host, no query).
func checkOTLPEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("want an OTLP/HTTP URL such as http://collector:4318, got %s", quote(s))
	}
	return nil
}

var listKeys = []listKey{
	{"trusted_proxies", "CIDRs or IP addresses", checkTrustedProxy, func(c *Config) *[]string { return &c.TrustedProxies }},
	{"allowed_origins", "origins", checkOrigin, func(c *Config) *[]string { return &c.AllowedOrigins }},
	{"anonymise.url_params", "parameter names", checkParamName, func(c *Config) *[]string { return &c.Anonymise.URLParams }},
	{"consent.redis.addrs", "host:port addresses", checkRedisAddr, func(c *Config) *[]string { return &c.Consent.Redis.Addrs }},
}

const maxInt = int(^uint(0) >> 1)

func setString(dst *string, s string, check func(string) error) error {
	if err := check(s); err != nil {
		return err
	}
	*dst = s
	return nil
}

func setBool(dst *bool, s string) error {
	b, err := parseBool(s)
	if err == nil {
		*dst = b
	}
	return err
}

// parseBool takes YAML 1.2 booleans only: "yes" and "on" are strings in YAML 1.2, and
// taking them here would make the same word mean different things in different places.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %s", quote(s))
}

func setInt(dst *int, s string, lo, hi int, unit string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number, got %s", quote(s))
	}
	if n < lo || n > hi {
		if hi == maxInt {
			return fmt.Errorf("%d is less than %d", n, lo)
		}
		return fmt.Errorf("%d is out of range %d..%d%s", n, lo, hi, unit)
	}
	*dst = n
	return nil
}

// setDuration takes Go durations ("5s", "1m30s") or whole days ("395d"), more than zero
// and, when max > 0, at most max.
func setDuration(dst *time.Duration, s string, max time.Duration) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	switch {
	case v <= 0:
		return fmt.Errorf("%s: must be more than 0", quote(s))
	case max > 0 && v > max:
		return fmt.Errorf("%s is more than 25 months (%dd)", quote(s), max/day)
	}
	*dst = v
	return nil
}

// setDurationIn is setDuration for a range: more than 0, at least lo when lo > 0, and at
// most hi.
func setDurationIn(dst *time.Duration, s string, lo, hi time.Duration) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	switch {
	case lo > 0 && (v < lo || v > hi):
		return fmt.Errorf("%s is out of range %s..%s", quote(s), fmtDuration(lo), fmtDuration(hi))
	case v <= 0:
		return fmt.Errorf("%s: must be more than 0", quote(s))
	case v > hi:
		return fmt.Errorf("%s is more than %s", quote(s), fmtDuration(hi))
	}
	*dst = v
	return nil
}

// fmtDuration writes a duration as a config would: "790d", "1h", "1m30s", "5ms".
func fmtDuration(v time.Duration) string {
	if v >= day && v%day == 0 {
		return strconv.FormatInt(int64(v/day), 10) + "d"
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("want a duration such as \"5s\", \"1m30s\" or \"30d\", got %s", quote(s))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil || days > 100_000 { // beyond that, days × 24h overflows
			return 0, bad
		}
		return time.Duration(days) * day, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return v, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("bad address %s: %v; want host:port, e.g. \":8080\" or \"127.0.0.1:9090\"", quote(s), err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %s: want a number in 0..65535", quote(port))
	}
	if host != "" && !validHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("bad host %s: want an IP address or a host name", quote(host))
		}
	}
	return nil
}

// validHostname accepts DNS names (letters, digits, '-' and, for internal names, '_').
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func checkSecret(s, why string) error {
	if n := utf8.RuneCountInString(s); n < 16 {
		return fmt.Errorf("too short (%d characters): use at least 16, since %s", n, why)
	}
	return nil
}

// Optional values (admin_token, anonymise.secret, geo.database, consent.cookie_domain)
// take "" as unset, so a templated config can leave them blank.

func checkAdminToken(s string) error {
	if s == "" {
		return nil
	}
	if err := checkSecret(s, "it guards reading and erasing visitors' consent records"); err != nil {
		return err
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return errors.New("want printable ASCII without spaces: it is sent as a bearer token in a header")
		}
	}
	return nil
}

func checkAnonymiseSecret(s string) error {
	if s == "" {
		return nil
	}
	return checkSecret(s, "it keys the hash of identifiers, and a short key lets anyone recompute the hashes")
}

func checkLogLevel(s string) error {
	levels := []string{"debug", "info", "warn", "error"}
	if !slices.Contains(levels, s) {
		return fmt.Errorf("unknown log level %s (known: %s)", quote(s), strings.Join(levels, ", "))
	}
	return nil
}

// checkDatabase opens the GeoIP database only if it is a regular file: opening a FIFO
// would block the loader.
func checkDatabase(s string) error {
	if s == "" {
		return nil
	}
	if fi, err := os.Stat(s); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", quote(s))
	}
	f, err := os.Open(s)
	if err != nil {
		return err
	}
	return f.Close()
}

func checkRegime(s string) error {
	if _, ok := geo.ParseRegime(s); !ok {
		return fmt.Errorf("unknown regime %s (known: %s)", quote(s), strings.Join(geo.RegimeNames(), ", "))
	}
	return nil
}

func checkStore(s string) error {
	return checkEnum(s, "store", "memory", "redis")
}

func checkOnStoreError(s string) error {
	return checkEnum(s, "value", "deny", "unset")
}

func checkEnum(s, what string, known ...string) error {
	if !slices.Contains(known, s) {
		return fmt.Errorf("unknown %s %s (known: %s)", what, quote(s), strings.Join(known, ", "))
	}
	return nil
}

// checkRedisAddr wants an address to dial: a host and a non-zero port.
func checkRedisAddr(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("bad address %s: %s; want host:port, e.g. \"10.0.0.5:6379\"", quote(s), why)
	}
	if strings.Contains(s, "://") {
		return bad("a URL; write only the host and port (TLS, user and password have their own keys)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return bad(ae.Err)
		}
		return bad(err.Error())
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return bad("the port must be a number in 1..65535")
	}
	if host == "" {
		return bad("no host")
	}
	if !validHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return bad("the host must be an IP address or a host name")
		}
	}
	return nil
}

// checkMasterName: Sentinel names are plain words; "" is unset (no Sentinel).
func checkMasterName(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) }) {
		return fmt.Errorf("bad master name %s: no spaces or control characters", quote(s))
	}
	return nil
}

// checkKeyPrefix: the store puts the consent ID of every key in a hash tag ("{id}"), so
// that the keys of one ID share a Redis Cluster slot. A brace in the prefix would make the
// prefix the hash tag (every ID in one slot) or break it.
func checkKeyPrefix(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty: keys without a prefix clash with the other keys of the database")
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) }):
		return fmt.Errorf("bad key prefix %s: no spaces or control characters", quote(s))
	case strings.ContainsAny(s, "{}"):
		return fmt.Errorf("bad key prefix %s: no \"{\" or \"}\": keys put the consent ID in a Redis Cluster hash tag ({id}), which a brace in the prefix would break", quote(s))
	}
	return nil
}

// checkCookieName wants an RFC 6265 token: anything else breaks the Set-Cookie header.
func checkCookieName(s string) error {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("bad cookie name %s: want letters, digits and !#$%%&'*+-.^_`|~ (an RFC 6265 token)", quote(s))
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (isAlnum(byte(r)) || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

func checkCookieDomain(s string) error {
	if s != "" && !validHostname(strings.TrimPrefix(s, ".")) {
		return fmt.Errorf("bad cookie domain %s: want a domain such as \".example.com\"", quote(s))
	}
	return nil
}

func checkTrustedProxy(s string) error {
	if _, err := geo.ParseTrusted([]string{s}); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return fmt.Errorf("bad CIDR or IP address %s: %v", quote(s), err)
	}
	return nil
}

// checkOrigin wants exactly what a browser sends in Origin, since origins are compared as
// strings: scheme and lower-case host, an optional port, nothing else.
func checkOrigin(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("bad origin %s: %s", quote(s), why)
	}
	if s == "*" || strings.Contains(s, "*") {
		return bad("wildcards are not allowed: the consent API is called with credentials")
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return bad("want http://host or https://host[:port]")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad(urlErr(err))
	}
	switch {
	case u.Host == "" || u.User != nil:
		return bad("want http://host or https://host[:port]")
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("an origin has no path, query or fragment (e.g. \"https://www.example.com\", no trailing \"/\")")
	case u.Host != strings.ToLower(u.Host):
		return bad("write the host in lower case, as browsers send it")
	}
	if h := u.Hostname(); !validHostname(h) {
		if _, err := netip.ParseAddr(h); err != nil {
			return bad("bad host " + quote(h))
		}
	}
	return nil
}

func urlErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func checkUpstreamURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL %s: %s", quote(s), urlErr(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("bad URL %s: want an absolute http or https URL, e.g. \"https://upstream.example.com\"", quote(s))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("bad URL %s: no query or fragment allowed, only a path prefix", quote(s))
	}
	return nil
}

func checkParamName(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("want a parameter name, got %s", quote(s))
	}
	return nil
}

func checkRoutePath(s string) error {
	switch i := strings.IndexByte(s, '*'); {
	case !strings.HasPrefix(s, "/"):
		return fmt.Errorf("bad path %s: must start with \"/\"", quote(s))
	case i >= 0 && i != len(s)-1:
		return fmt.Errorf("bad path %s: \"*\" may only end a path, to match a prefix", quote(s))
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '?' || r == '#' }):
		return fmt.Errorf("bad path %s: no query, fragment, spaces or control characters", quote(s))
	}
	return nil
}

// checkRouteHost wants a bare host name: the router matches the Host header without port.
func checkRouteHost(s string) error {
	if !validHostname(s) {
		return fmt.Errorf("bad host %s: want a host name without port, e.g. \"t.example.com\"", quote(s))
	}
	return nil
}
