package canary

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Canary is one planted identifier: the value put into a hit, and the needles whose
// presence in what the upstream received proves that it (or a recognisable part of it)
// got through.
type Canary struct {
	Kind  string
	Value string
	// Click is the parameter name a click ID travels under (gclid, fbclid...); empty
	// for the other kinds.
	Click string
	// Needles are lower-case fragments unique to this canary, each long enough (≥ 8
	// bytes) not to turn up by chance inside a hash or kept text.
	Needles []string
}

// ClickIDs are the click and campaign-tracking IDs a landing URL can carry: the
// vendors' own (gclid…) and the e-mail and affiliate tools' that the issue names.
var ClickIDs = []string{
	"gclid", "gbraid", "wbraid", "dclid", "fbclid", "msclkid", "ttclid", "li_fat_id",
	"twclid", "srsltid", "yclid", "rdt_cid", "ScCid", "qclid", "ef_id", "s_kwcid",
	"_hsenc", "_hsmi", "mc_eid", "oly_enc_id", "igshid", "irclickid",
}

// Kinds are the identifier shapes planted, besides one click-ID kind per name in
// ClickIDs ("click:gclid").
var Kinds = []string{"email", "phone", "token", "uuid", "name", "ipv4", "ipv6", "ipv6_6to4", "ipv6_mapped", "ipv6_teredo", "ipv6_nat64"}

// AllKinds is Kinds followed by the click-ID kinds.
func AllKinds() []string {
	k := append([]string(nil), Kinds...)
	for _, c := range ClickIDs {
		k = append(k, "click:"+c)
	}
	return k
}

// New makes the canary of kind for serial n: every (kind, n) gives a different value,
// so a needle found upstream names the case it came from.
func New(kind string, n int) Canary {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", kind, n)))
	h := hex.EncodeToString(sum[:])
	c := Canary{Kind: kind}
	switch {
	case kind == "email":
		local := "cnr" + base36(n, 5) + "qx"
		c.Value = local + "@mailbox-canary.example"
		c.Needles = []string{local}
	case kind == "phone":
		digits := fmt.Sprintf("%08d", 31000000+n%60000000)
		c.Value = "+4915" + digits
		c.Needles = []string{digits}
	case kind == "token":
		c.Value = h[:32]
		c.Needles = []string{h[:32], h[:12], h[10:22], h[20:32]}
	case kind == "uuid":
		u := h[:12] + "4" + h[13:16] + "a" + h[17:32]
		c.Value = u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
		c.Needles = []string{u[20:32], u[:12], u[8:20]}
	case kind == "name":
		surname := "quast" + letters(n, 4)
		c.Value = "Velmora " + strings.ToUpper(surname[:1]) + surname[1:]
		c.Needles = []string{surname}
	case kind == "ipv4":
		c.Value = ipv4(n)
		c.Needles = []string{c.Value}
	case kind == "ipv6":
		g := fmt.Sprintf("c0de:%x:%x:d00d", 0x1000+n&0xfff, 0x1000+(n>>12)&0xfff)
		c.Value = "2a02:d000:1234:5678:" + g
		c.Needles = []string{g}
	case kind == "ipv6_6to4":
		v4 := ipv4(n)
		g := ipv4Groups(v4)
		c.Value = "2002:" + g + "::1"
		c.Needles = []string{g, v4}
	case kind == "ipv6_mapped":
		v4 := ipv4(n)
		c.Value = "::ffff:" + v4
		c.Needles = []string{v4, ipv4Groups(v4)}
	case kind == "ipv6_teredo":
		// RFC 4380: the client's IPv4 address in the last 32 bits, every bit inverted.
		v4 := ipv4(n)
		var o [4]int
		fmt.Sscanf(v4, "%d.%d.%d.%d", &o[0], &o[1], &o[2], &o[3])
		g := fmt.Sprintf("%02x%02x:%02x%02x", 255-o[0], 255-o[1], 255-o[2], 255-o[3])
		c.Value = "2001:0:4136:e378:8000:63bf:" + g
		c.Needles = []string{g, v4}
	case kind == "ipv6_nat64":
		// RFC 6052: the well-known prefix 64:ff9b::/96 with the IPv4 address after it.
		v4 := ipv4(n)
		g := ipv4Groups(v4)
		c.Value = "64:ff9b::" + g
		c.Needles = []string{g, v4}
	case strings.HasPrefix(kind, "click:"):
		c.Click = strings.TrimPrefix(kind, "click:")
		tail := base36(n, 6) + h[:16]
		c.Value = "Cj0KCQ" + tail
		c.Needles = []string{strings.ToLower(tail)}
	default:
		panic("canary: unknown kind " + kind)
	}
	return c
}

// ipv4 is a public IPv4 address (81.0.0.0/8) unique to n, every octet three digits so
// that one address is never the prefix of another.
func ipv4(n int) string {
	return fmt.Sprintf("81.%d.%d.%d", 100+(n/10000)%150, 100+(n/100)%100, 100+n%100)
}

// ipv4Groups writes an IPv4 address as the two hex groups it takes inside an IPv6
// address (6to4 2002:AABB:CCDD::).
func ipv4Groups(v4 string) string {
	var o [4]int
	fmt.Sscanf(v4, "%d.%d.%d.%d", &o[0], &o[1], &o[2], &o[3])
	return fmt.Sprintf("%02x%02x:%02x%02x", o[0], o[1], o[2], o[3])
}

func base36(n, width int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = digits[n%36]
		n /= 36
	}
	return string(b)
}

func letters(n, width int) string {
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('a' + n%26)
		n /= 26
	}
	return string(b)
}

// Encodings a value is planted in. Gzip is a body encoding and applies to the whole
// body; the others apply to one value.
const (
	Plain     = "plain"     // as a tag writes it: encodeURIComponent
	Percent   = "percent"   // every byte %XX, letters too
	Double    = "double"    // encoded twice (%2540)
	Semicolon = "semicolon" // the pair joined to the one before with ';', not '&'
	Gzip      = "gzip"      // the body gzip-compressed
	JSONEsc   = "jsonesc"   // in a JSON string, every character as \u00XX
	Duplicate = "duplicate" // a second pair (or JSON member) of the same name after the hit's own
	NamePct   = "name-pct"  // the parameter's name percent-encoded, every byte
)

// Encode writes v for a query or form value in encoding enc (Plain for Semicolon and
// Gzip, whose difference lies outside the value).
func Encode(enc, v string) string {
	switch enc {
	case Percent:
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			fmt.Fprintf(&b, "%%%02X", v[i])
		}
		return b.String()
	case Double:
		return url.QueryEscape(url.QueryEscape(v))
	default:
		return url.QueryEscape(v)
	}
}

// JSONString writes v as a JSON string literal, plainly or (JSONEsc) with every
// character escaped.
func JSONString(enc, v string) string {
	if enc != JSONEsc {
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range v {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	b.WriteByte('"')
	return b.String()
}

// Compress gzip-compresses b.
func Compress(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Inflate returns body decoded per a Content-Encoding (gzip, deflate); anything else,
// or a body that does not decode, comes back as is.
func Inflate(coding string, body []byte) []byte {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(coding)) {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return body
		}
		r = zr
	case "deflate":
		r = flate.NewReader(bytes.NewReader(body))
	default:
		return body
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return body
	}
	return out
}

// Find reports the first form in which one of c's needles occurs in haystack: plain,
// percent-encoded once or more (any mix of encoded and literal bytes), JSON-escaped,
// or base64 (standard or URL alphabet, any alignment). Case is ignored.
func Find(haystack []byte, c Canary) (needle, form string, found bool) {
	low := bytes.ToLower(haystack)
	views := []struct {
		name string
		b    []byte
	}{{"plain", low}}
	dec := low
	for i := 1; i <= 3; i++ {
		next := percentDecode(dec)
		if bytes.Equal(next, dec) {
			break
		}
		dec = next
		views = append(views, struct {
			name string
			b    []byte
		}{fmt.Sprintf("percent-decoded x%d", i), dec})
	}
	if u := jsonUnescape(low); !bytes.Equal(u, low) {
		views = append(views, struct {
			name string
			b    []byte
		}{"json-unescaped", bytes.ToLower(u)})
	}
	for _, n := range c.Needles {
		for _, v := range views {
			if bytes.Contains(v.b, []byte(n)) {
				return n, v.name, true
			}
		}
		for _, b64 := range base64Forms(n, c.Value) {
			if bytes.Contains(haystack, []byte(b64)) {
				return n, "base64", true
			}
		}
	}
	return "", "", false
}

// percentDecode decodes every valid %XX (and '+' as space), leaving the rest.
func percentDecode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, lower(unhex(b[i+1])<<4|unhex(b[i+2])))
			i += 2
			continue
		}
		if c == '+' {
			c = ' '
		}
		out = append(out, c)
	}
	return out
}

// jsonUnescape replaces \uXXXX and the one-character escapes.
func jsonUnescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+5 < len(b) && b[i+1] == 'u' && isHex(b[i+2]) && isHex(b[i+3]) && isHex(b[i+4]) && isHex(b[i+5]) {
			r := rune(unhex(b[i+2]))<<12 | rune(unhex(b[i+3]))<<8 | rune(unhex(b[i+4]))<<4 | rune(unhex(b[i+5]))
			out = append(out, string(r)...)
			i += 5
			continue
		}
		if b[i] == '\\' && i+1 < len(b) && strings.IndexByte(`"\/`, b[i+1]) >= 0 {
			out = append(out, b[i+1])
			i++
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// base64Forms are the stretches of the base64 encoding of n that do not depend on the
// bytes around it, for each of the three alignments and both alphabets. Case matters in
// base64, so n is tried in lower case, upper case and as it is written in value.
func base64Forms(n, value string) []string {
	var forms []string
	cases := []string{n, strings.ToUpper(n)}
	if i := strings.Index(strings.ToLower(value), n); i >= 0 {
		cases = append(cases, value[i:i+len(n)])
	}
	for _, s := range cases {
		for pad := 0; pad < 3; pad++ {
			src := strings.Repeat("\x00", pad) + s
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				e := enc.EncodeToString([]byte(src))
				// Characters that mix padding bytes or the unknown next byte are cut.
				start := (pad*8 + 5) / 6
				end := len(src) * 8 / 6
				if end-start >= 8 {
					forms = append(forms, e[start:end])
				}
			}
		}
	}
	return forms
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
