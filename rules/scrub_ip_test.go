package rules

import "testing"

// TestScrubIPAddresses: IP addresses in free text, URL segments and campaign values,
// in the forms the generative leak test found getting through: IPv6 (whose ':' is no
// word character), 6to4 and mapped forms, and addresses glued into a word by '+' (what
// a double-encoded space leaves).
func TestScrubIPAddresses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"at 2a02:d000:1234:5678:c0de:11c6:1000:d00d today", "at :ip today"},
		{"2001:db8::1", ":ip"},
		{"from 2002:5102:458e::1", "from :ip"},
		{"::ffff:81.2.69.142", ":ip"},
		{"host fe80::1%eth0", "host :ip%eth0"},
		{"Order+for+2a02:d000:1234:5678:c0de:11c6:1000:d00d+confirmed", "Order+for+:ip+confirmed"},
		{"Order+for+81.2.69.142+confirmed", "Order+for+:ip+confirmed"},
		{"ip_81.2.69.142", "ip_:ip"},
		{"81.2.69.142", ":ip"},
		// Not addresses.
		{"12:30:45", "12:30:45"},
		{"std::vector", "std::vector"},
		{"Version 1.2.3", "Version 1.2.3"},
		{"a:b", "a:b"},
		{"dead:beef", "dead:beef"},
	} {
		got, _ := scrubText(nil, []byte(c.in), escNone)
		if string(got) != c.want {
			t.Errorf("scrubText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIPAt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"2001:db8::1", 11}, {"2001:db8::1 x", 11}, {"::1", 3}, {"::ffff:1.2.3.4", 14},
		{"1:2:3:4:5:6:7:8", 15}, {"1:2:3:4:5:6:7", 0}, {"1:2:3:4:5:6:7:8:9", 0},
		{"2001:db8::1::2", 0}, {"12345::1", 0}, {"::", 0}, {"a::", 3},
		{"1.2.3.4", 7}, {"1.2.3.4.5", 0}, {"256.1.1.1", 0}, {"1.2.3", 0}, {"01.002.3.4", 10},
		{"2001:db8::1:", 11}, {"2001:db8::g", 0},
	} {
		if got := ipAt([]byte(c.in)); got != c.want {
			t.Errorf("ipAt(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestTokenShapes: a token is refused when it looks like an identifier, except the
// vendor's opaque IDs (refused only when they hold an IP address) and product numbers.
func TestTokenShapes(t *testing.T) {
	tok, opaque, sku := Token(csSKU, 100), VendorID("A-Za-z0-9:_-", 100), SKU(csSKU, 100)
	for _, c := range []struct {
		spec Value
		in   string
		want bool
	}{
		{tok, "pixel.js", true},
		{tok, "81.2.69.142", false},
		{tok, "c23765d559cca9b0808a715cafdb534d", false},
		{tok, "60be46c1-49c2-4a81-af04-3e65b4447788", false},
		{tok, "+491531019270", false},
		{tok, "Cj0KCQ00028v9029281198c8d372", false},
		{opaque, "1:1234567890:android:321abc456def7890", true},
		{opaque, "c23765d559cca9b0808a715cafdb534d", true},
		{opaque, "2a02:d000:1234:5678:c0de:11c6:1000:d00d", false},
		{opaque, "x_81.2.69.142", false},
		{sku, "4006381333931", true},
		{sku, "SKU-1234", true},
		{sku, "123456789012345", false},
		{sku, "+491531019270", false},
		{sku, "81.2.69.142", false},
		{sku, "60be46c1-49c2-4a81-af04-3e65b4447788", false},
	} {
		spec := c.spec
		if got := tokenOK(&spec, []byte(c.in)); got != c.want {
			t.Errorf("tokenOK(%+v, %q) = %v, want %v", spec.Opaque, c.in, got, c.want)
		}
	}
}

func TestRegistrableDomain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"www.example.com", "example.com"},
		{"jane-doe.shop.example.co.uk", "example.co.uk"},
		{"Shop.Example.COM", "Example.COM"},
		{"example.com", "example.com"},
		{"l.facebook.com", "facebook.com"},
		{"user.github.io", "user.github.io"}, // a private suffix: each user is a site
		{"com", ""},
		{"co.uk", ""},
		{"bücher.example", "bücher.example"},
	} {
		got, ok := registrableDomain([]byte(c.in))
		if string(got) != c.want || ok != (c.want != "") {
			t.Errorf("registrableDomain(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}
