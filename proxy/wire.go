package proxy

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"
)

// upstreamClientName is the User-Agent of an upstream request whose hit had none. The
// HostClient would add its Name at send time; buildUpstream sets it itself, so that the
// request it builds, which explain shows, is byte for byte the one that is sent.
const upstreamClientName = "consentgate"

// queryEscape marks the bytes a query may not carry on the upstream's request line as
// they stand: the WHATWG URL Standard's special-query percent-encode set (C0 controls,
// bytes above "~", space, `"`, "#", "<", ">" and "'"), which is what a browser escapes
// in a query it sends. fasthttp's listener passes raw bytes above 0x7f and quotes
// through; they are escaped here rather than copied onto the line.
var queryEscape = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c > 0x7e
	}
	for _, c := range []byte(" \"#<>'") {
		t[c] = true
	}
	return t
}()

// queryNeedsEscape reports whether q has a byte queryEscape marks, or a "%" that does not
// start an escape.
func queryNeedsEscape(q []byte) bool {
	for i, c := range q {
		if queryEscape[c] || c == '%' && !validEscapeAt(q, i) {
			return true
		}
	}
	return false
}

// appendQueryTarget appends q with every byte queryEscape marks, and every "%" that
// does not start an escape, percent-encoded. A vendor's parser decodes the result to the
// bytes q meant (a lenient one keeps a stray "%" as it is, which "%25" decodes to), and
// no byte of it can end the query or the request line early.
func appendQueryTarget(dst, q []byte) []byte {
	for i, c := range q {
		if queryEscape[c] || c == '%' && !validEscapeAt(q, i) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func validEscapeAt(s []byte, i int) bool {
	return i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

const upperHex = "0123456789ABCDEF"

// wireBytes is up serialised as the HostClient writes it on the connection: request
// line, headers, blank line, body. Explain shows it.
func wireBytes(up *fasthttp.Request) ([]byte, error) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := up.Write(w); err != nil {
		return nil, fmt.Errorf("serialise upstream request: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("serialise upstream request: %w", err)
	}
	return b.Bytes(), nil
}
