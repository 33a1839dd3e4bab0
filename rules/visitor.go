package rules

import (
	"net/netip"
	"unsafe"

	"github.com/consentgate/consentgate/internal/jsonscan"
)

// visitorDepth bounds the body walk; the fields read are at the top level or one below.
const visitorDepth = 64

// Visitor reads, from a server-side hit's JSON body, who the visitor is: the IP the
// sender states (ip_override), and the country and region codes of its location object
// (user_location). Values are taken only when they are plain JSON strings without escapes:
// anything else counts as absent, which leaves the visitor of unknown location (the
// strictest regime by default), never the sender's. It allocates nothing; the returned
// slices alias body.
func (v *VisitorFields) Read(body []byte) (ip netip.Addr, country, region []byte) {
	if v.IP == "" && v.Location == "" {
		return netip.Addr{}, nil, nil
	}
	it := jsonscan.Members(body, jsonscan.SkipSpace(body, 0), visitorDepth)
	for it.Next() {
		switch {
		case v.IP != "" && jsonscan.Equal(it.Key(), v.IP):
			if s, ok := plainString(it.Value(), it.Kind()); ok {
				if a, err := netip.ParseAddr(b2s(s)); err == nil && a.Zone() == "" {
					ip = a.Unmap()
				}
			}
		case v.Location != "" && jsonscan.Equal(it.Key(), v.Location) && it.Kind() == jsonscan.Object:
			loc := jsonscan.Members(it.Value(), 0, visitorDepth)
			for loc.Next() {
				switch {
				case jsonscan.Equal(loc.Key(), v.Country):
					country, _ = plainString(loc.Value(), loc.Kind())
				case v.Region != "" && jsonscan.Equal(loc.Key(), v.Region):
					region, _ = plainString(loc.Value(), loc.Kind())
				}
			}
		}
	}
	if it.Err() != nil {
		// A body that is not one well-formed object names no visitor.
		return netip.Addr{}, nil, nil
	}
	return ip, country, region
}

// plainString is the contents of a JSON string value without escapes.
func plainString(raw []byte, k jsonscan.Kind) ([]byte, bool) {
	if k != jsonscan.String || len(raw) < 2 {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// b2s views b as a string without copying, for a parse that does not keep it.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
