package load

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/consentgate/consentgate/config"
)

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

// Optional values (admin_token, anonymise.secret, geo.database, consent.cookie_domain)
// take "" as unset, so a templated config can leave them blank.

func checkAdminToken(s string) error {
	if s == "" {
		return nil
	}
	if err := checkSecretStrength(s, "it guards reading and erasing visitors' consent records"); err != nil {
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
	return checkSecretStrength(s, "with a day's salt it lets anyone test client IDs against that day's pseudonyms")
}

// checkSnapshotKey: a key of the consent snapshot signs what hits are decided by when the
// store cannot say; a guessable one lets anyone mint a consent.
func checkSnapshotKey(s string) error {
	if err := checkSecretStrength(s, "with it anyone can sign a consent snapshot that grants"); err != nil {
		return err
	}
	if strings.Contains(s, ",") {
		return errors.New("must not contain a comma: CONSENTGATE_CONSENT_SNAPSHOT_KEYS separates keys with commas")
	}
	return nil
}

func checkLogLevel(s string) error {
	levels := []string{"debug", "info", "warn", "error"}
	if !slices.Contains(levels, s) {
		return fmt.Errorf("unknown log level %s (known: %s)", quote(s), strings.Join(levels, ", "))
	}
	return nil
}

// checkFile opens a file the process reads (the GeoIP database, a TLS certificate or
// key) only if it is a regular file: opening a FIFO would block the loader.
func checkFile(s string) error {
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

func checkStore(s string) error {
	return checkEnum(s, "store", "memory", "redis")
}

func checkOnStoreError(s string) error {
	return checkEnum(s, "value", "deny", "unset")
}

func checkAfterDataLoss(s string) error {
	return checkEnum(s, "value", "restore", "refusals_only")
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

// checkTrustedProxy accepts what geo.ParseTrusted builds the trusted set from: an IP
// address without a zone, or a CIDR. (config does not import geo: geo is below it.)
func checkTrustedProxy(s string) error {
	t := strings.TrimSpace(s)
	var err error
	if strings.Contains(t, "/") {
		var p netip.Prefix
		if p, err = netip.ParsePrefix(t); err == nil {
			return checkNotWholeInternet(s, p)
		}
	} else if a, perr := netip.ParseAddr(t); perr != nil {
		err = perr
	} else if a.Zone() != "" {
		err = errors.New("zones are not supported")
	}
	if err != nil {
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

func checkFreeText(s string) error {
	if s != "scrub" && s != "drop" {
		return fmt.Errorf("want scrub or drop, got %s", quote(s))
	}
	return nil
}

// checkPathTemplate accepts what rules compiles: "/users/{id}", "/orders/*/{token}".
func checkPathTemplate(s string) error {
	_, err := config.ParsePathTemplate(s)
	return err
}

// checkSiteHost wants a bare host name, as a referrer's host is compared without port.
func checkSiteHost(s string) error {
	if !validHostname(strings.ToLower(s)) {
		return fmt.Errorf("bad host %s: want a host name without scheme or port, e.g. \"www.example.com\"", quote(s))
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
