package load

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/config"
	"go.yaml.in/yaml/v3"
)

// Keys of each mapping, in config.go order; a test checks them against the yaml tags.
var (
	topKeys = []string{"listen", "admin_listen", "admin_token", "admin_pprof", "trusted_proxies", "read_timeout",
		"write_timeout", "max_body_size", "idle_timeout", "max_header_size", "max_conns_per_ip", "allowed_origins", "log_level", "tls", "geo", "jurisdictions",
		"consent", "upstream", "upstreams", "anonymise", "policy", "routes", "signals", "server_side", "telemetry", "limits", "scripts"}
	tlsKeys           = []string{"cert_file", "key_file", "min_version"}
	geoKeys           = []string{"database", "unknown_regime"}
	jurisdictionsKeys = []string{"replace", "groups"}
	groupKeys         = []string{"regime", "codes", "gpc"}
	consentKeys       = []string{"store", "on_store_error", "cookie", "cookie_domain", "secure", "ttl", "max_entries",
		"redis", "cache", "receipts", "max_bytes", "snapshot"}
	redisKeys = []string{"addrs", "username", "password", "db", "tls", "cluster", "master_name", "timeout",
		"pool_size", "min_idle_conns", "key_prefix", "write_timeout"}
	consentCacheKeys = []string{"ttl", "negative_ttl", "max_entries", "max_bytes"}
	receiptsKeys     = []string{"max_len", "ttl", "max_bytes"}
	snapshotKeys     = []string{"keys", "after_data_loss"}
	limitsKeys       = []string{"consent_writes", "new_ids", "hits", "max_clients"}
	rateLimitsKeys   = []string{"per_ip", "per_net"}
	rateLimitKeys    = []string{"per_minute", "burst"}
	upstreamKeys     = []string{"timeout", "max_conns"}
	anonymiseKeys    = []string{"secret", "ipv6_prefix", "url_params", "allow", "free_text", "path_templates", "site_hosts"}
	routeKeys        = []string{"path", "host", "endpoint", "disabled"}
	signalsKeys      = []string{"tcf", "cmp"}
	serverSideKeys   = []string{"trusted_senders"}
	tcfKeys          = []string{"purposes", "vendors", "grant_from"}
	cmpKeys          = []string{"use_as_state", "onetrust_groups"}
	telemetryKeys    = []string{"otlp", "traces", "decision_log"}
	otlpKeys         = []string{"endpoint", "headers", "interval"}
	tracesKeys       = []string{"enabled", "sample_ratio"}
	decisionLogKeys  = []string{"sample_ratio"}
)

func (d *decoder) top(root *yaml.Node) {
	d.mapping(root, "", "key", topKeys, func(key, sub string, k, v *yaml.Node) {
		if d.table(sub, v) {
			return
		}
		switch key {
		case "tls":
			d.mapping(v, sub, "key", tlsKeys, d.tableOnly)
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
				case "snapshot":
					d.mapping(v, sub, "key", snapshotKeys, d.tableOnly)
				}
			})
		case "limits":
			d.mapping(v, sub, "key", limitsKeys, func(key, sub string, _, v *yaml.Node) {
				if d.table(sub, v) {
					return
				}
				d.mapping(v, sub, "key", rateLimitsKeys, func(_, sub string, _, v *yaml.Node) {
					d.mapping(v, sub, "key", rateLimitKeys, d.tableOnly)
				})
			})
		case "upstream":
			d.mapping(v, sub, "key", upstreamKeys, d.tableOnly)
		case "server_side":
			d.mapping(v, sub, "key", serverSideKeys, d.tableOnly)
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
		case "scripts":
			d.scripts(sub, v)
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
		var g config.JurisdictionGroup
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
				if err := d.checkName(s, "regime", d.voc.Regimes); err != nil {
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
			d.cfg.Jurisdictions.Groups = map[string]config.JurisdictionGroup{}
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
				if d.table(sub, v) {
					return
				}
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
	d.mapping(n, path, "purpose", known(d.voc.Purposes), func(purpose, sub string, _, v *yaml.Node) {
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
	d.mapping(n, path, "vendor", known(d.voc.Vendors), func(vendor, sub string, _, v *yaml.Node) {
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
		if !slices.Contains(d.voc.Purposes, s) {
			d.errorf(d.resolve(v), "%s: want a purpose (%s), got %s", sub, knownList(d.voc.Purposes), quote(s))
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
		d.markSecret(sub, d.resolve(v))
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
	d.mapping(n, path, "vendor", known(d.voc.Vendors), func(vendor, sub string, _, v *yaml.Node) {
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
	d.mapping(n, path, "vendor", known(d.voc.Vendors), func(vendor, sub string, _, v *yaml.Node) {
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
	keys := append(slices.Clone(known(d.voc.Regimes)), "vendors")
	d.mapping(n, path, "regime", keys, func(key, sub string, _, v *yaml.Node) {
		if key == "vendors" {
			d.mapping(v, sub, "vendor", known(d.voc.Vendors), func(vendor, vsub string, _, v *yaml.Node) {
				if d.cfg.Policy.Vendors == nil {
					d.cfg.Policy.Vendors = map[string]config.PolicyTable{}
				}
				t := d.cfg.Policy.Vendors[vendor]
				if t == nil {
					t = config.PolicyTable{}
					d.cfg.Policy.Vendors[vendor] = t
				}
				d.mapping(v, vsub, "regime", known(d.voc.Regimes), func(regime, rsub string, _, v *yaml.Node) {
					d.policyRegime(t, regime, rsub, v)
				})
			})
			return
		}
		if d.cfg.Policy.Table == nil {
			d.cfg.Policy.Table = config.PolicyTable{}
		}
		d.policyRegime(d.cfg.Policy.Table, key, sub, v)
	})
}

func (d *decoder) policyRegime(t config.PolicyTable, regime, path string, n *yaml.Node) {
	d.mapping(n, path, "status", known(d.voc.Statuses), func(status, ssub string, _, v *yaml.Node) {
		d.mapping(v, ssub, "purpose", known(d.voc.Purposes), func(purpose, psub string, _, v *yaml.Node) {
			s, ok := d.required(v, psub, "an action (forward, anonymise, drop)")
			if !ok {
				return
			}
			v = d.resolve(v)
			d.cfg.Pos[psub] = d.at(v)
			if !slices.Contains(d.voc.Actions, s) {
				d.errorf(v, "%s: unknown action %s (known: %s)", psub, quote(s), knownList(d.voc.Actions))
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
		r := config.RouteConfig{Pos: d.at(item)}
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
		case !r.Disabled && endpointNode != nil && !slices.Contains(d.voc.Endpoints, r.Endpoint):
			d.errorf(endpointNode, "%s.endpoint: unknown endpoint %s (known: %s)", sub, quote(r.Endpoint), knownList(d.voc.Endpoints))
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

// known is never nil: mapping takes a nil list as "any name", and an empty vocabulary must
// accept no name, not every one.
func known(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}
