package load

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/config"
)

// Guards are settings that are valid YAML and valid values but dangerous. Each is refused
// where no deployment needs it, and warned about where some do (README "Configuration
// guards"):
//
//   - a trusted_proxies or server_side.trusted_senders entry covering the whole Internet
//     is refused (checkTrustedProxy); a very wide public one is warned about;
//   - timeouts are bounded by their ranges (keys.go), so none can be unbounded;
//   - a non-loopback admin_listen without admin_token is warned about;
//   - a config file that holds secrets and is readable by every user is warned about;
//   - so are a TLS key file readable by every user and a certificate that has expired or
//     is not valid yet (tls.go).
//
// Warnings go into Config.Warnings: `check` prints them, `serve` logs them at start and
// on every reload.

// publicV6 is the IPv6 global unicast space: a prefix that does not touch it (ULA
// fc00::/7, link-local fe80::/10, loopback) is private, however short.
var publicV6 = netip.MustParsePrefix("2000::/3")

// privateV4 are the IPv4 ranges no Internet client comes from: a prefix inside one of
// them is private, however short.
var privateV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// Widths beyond which a public prefix is the whole Internet (refused) or very wide
// (warned about). The widest ranges real proxies publish are narrower: Cloudflare's
// largest are an IPv4 /13 and an IPv6 /29.
const (
	wholeV4Bits, wideV4Bits = 8, 13
	wholeV6Bits, wideV6Bits = 16, 29
)

// publicWidth says whether a trusted prefix covers the whole Internet or a very wide
// part of it. An IPv4-mapped prefix counts as the IPv4 prefix it denotes, as
// geo.ParseTrusted reads it.
func publicWidth(p netip.Prefix) (whole, wide bool) {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	if p.Addr().Is4() {
		for _, r := range privateV4 {
			if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
				return false, false
			}
		}
		return p.Bits() < wholeV4Bits, p.Bits() < wideV4Bits
	}
	if !p.Overlaps(publicV6) {
		return false, false
	}
	return p.Bits() < wholeV6Bits, p.Bits() < wideV6Bits
}

// checkNotWholeInternet refuses a trusted prefix that covers the whole Internet: every
// client would be trusted to say who the visitor is, and so to choose its location and
// with it the consent rules that apply.
func checkNotWholeInternet(s string, p netip.Prefix) error {
	if whole, _ := publicWidth(p); whole {
		return fmt.Errorf("%s covers all or much of the Internet: every client would be trusted to state the visitor's address, "+
			"and so to choose which consent rules apply; list only your load balancers', CDN's or backends' own ranges", quote(s))
	}
	return nil
}

// warn records a warning at key's position (or the file's, when key has none).
func (d *decoder) warn(key, format string, args ...any) {
	pos, ok := d.cfg.Pos[key]
	if !ok {
		pos = config.Pos{File: d.file}
	}
	d.cfg.Warnings = append(d.cfg.Warnings, config.Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// warnings fills cfg.Warnings; info is the config file's, nil without one.
func (d *decoder) warnings(info fs.FileInfo) {
	c := d.cfg
	for _, l := range []struct {
		key   string
		items []string
	}{{"trusted_proxies", c.TrustedProxies}, {"server_side.trusted_senders", c.ServerSide.TrustedSenders}} {
		for i, s := range l.items {
			p, err := parseTrustedPrefix(s)
			if err != nil {
				continue
			}
			if whole, wide := publicWidth(p); wide && !whole {
				sub := l.key + "." + strconv.Itoa(i)
				d.warn(sub, "%s: %s is a very wide public range (/%d): every client in it is trusted to state the visitor's address; "+
					"proxies publish narrower ranges (Cloudflare's widest: IPv4 /13, IPv6 /29)", sub, quote(s), p.Bits())
			}
		}
	}
	if c.AdminToken == "" && !loopbackListen(c.AdminListen) {
		d.warn("admin_listen", "admin_listen: %s is reachable from other hosts and admin_token is unset: /metrics, /api/stats and /dashboard "+
			"answer anyone who reaches it; bind it to 127.0.0.1 or a private interface, or keep it behind a firewall", quote(c.AdminListen))
	}
	d.tlsWarnings()
	if info != nil && info.Mode().Perm()&0o004 != 0 {
		var keys []string
		for n, key := range d.secrets {
			if n.Value != "" {
				keys = append(keys, key)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			keys = slices.Compact(keys)
			d.cfg.Warnings = append(d.cfg.Warnings, config.Problem{Pos: config.Pos{File: d.file}, Msg: fmt.Sprintf(
				"readable by every user of this machine (mode %04o) and holds secrets (%s): chmod o-r the file, "+
					"or set them through CONSENTGATE_* variables", info.Mode().Perm(), strings.Join(keys, ", "))})
		}
	}
}

// parseTrustedPrefix reads a trusted_proxies entry as a prefix: a bare address is a
// single-address prefix.
func parseTrustedPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// loopbackListen says whether a host:port listens on loopback only: "localhost" or a
// loopback address. An empty host, 0.0.0.0 and :: listen on every interface; any other
// name may resolve to anything.
func loopbackListen(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
