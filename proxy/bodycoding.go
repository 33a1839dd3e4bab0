package proxy

// Request bodies that come compressed (a tag may compress its beacon, e.g. with the
// browser's CompressionStream("gzip")). The rewrite, the signal readers and the upstream
// all need the body as it reads, so it is decoded first, bounded by max_body_size counted
// after decoding, and the upstream gets the decoded body with no Content-Encoding. It is
// never forwarded unread: a gzip body carrying "_uip=9.9.9.9" would pass the IP rewrite
// untouched and be decoded by the vendor, which would then take the browser's IP.

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	brotli "github.com/molecule-man/go-brrr"
)

var (
	// errDecodedTooLarge: the body decodes to more than max_body_size (a zip bomb).
	errDecodedTooLarge = errors.New("decoded body over max_body_size")
	// errCoding: a coding the proxy does not read, or several stacked.
	errCoding = errors.New("unsupported content coding")
)

// coding is the one content coding a request body is decoded from.
type coding uint8

const (
	codingNone    coding = iota // no Content-Encoding, or identity
	codingGzip                  // gzip, x-gzip (RFC 9110 §8.4.1.3)
	codingDeflate               // deflate: the zlib format (RFC 9110 §8.4.1.2), as CompressionStream("deflate") writes it
	codingBrotli                // br (RFC 7932)
)

// parseCodings reads every Content-Encoding header value (a comma-separated list each).
// identity is no coding. Several codings stacked are refused (errCoding), as is any
// other name (compress, zstd, …): no tag sends them, and each more layer is more work
// per hit for whoever sends it.
func parseCodings(values [][]byte) (coding, error) {
	c := codingNone
	for _, v := range values {
		for len(v) > 0 {
			var tok []byte
			tok, v, _ = bytes.Cut(v, comma)
			tok = bytes.TrimSpace(tok)
			var next coding
			switch {
			case len(tok) == 0, bytes.EqualFold(tok, []byte("identity")):
				continue
			case bytes.EqualFold(tok, []byte("gzip")), bytes.EqualFold(tok, []byte("x-gzip")):
				next = codingGzip
			case bytes.EqualFold(tok, []byte("deflate")):
				next = codingDeflate
			case bytes.EqualFold(tok, []byte("br")):
				next = codingBrotli
			default:
				return codingNone, errCoding
			}
			if c != codingNone {
				return codingNone, errCoding
			}
			c = next
		}
	}
	return c, nil
}

// Decoders are pooled with their source reader: a gzip or zlib reader keeps its window
// and tables across Reset, and a steady stream of compressed hits allocates nothing.
type (
	gzipDecoder struct {
		src bytes.Reader
		zr  gzip.Reader
	}
	zlibDecoder struct {
		src bytes.Reader
		zr  io.ReadCloser // implements zlib.Resetter
	}
	brotliDecoder struct {
		src bytes.Reader
		br  *brotli.Reader
	}
)

var gzipDecoders, zlibDecoders, brotliDecoders sync.Pool

// decodeBody appends body decoded from c to dst. It reads at most max+1 decoded bytes:
// a body that decodes to more is errDecodedTooLarge however small it came, so a zip bomb
// costs at most max bytes of output and the work to produce them. A corrupt or truncated
// stream (bad header, bad checksum, early end) is an error; bytes after the end of a
// zlib or brotli stream are ignored, never sent. On error dst comes back unchanged.
func decodeBody(dst, body []byte, c coding, max int) ([]byte, error) {
	switch c {
	case codingNone:
		if len(body) > max {
			return dst, errDecodedTooLarge
		}
		return append(dst, body...), nil
	case codingGzip:
		d, _ := gzipDecoders.Get().(*gzipDecoder)
		if d == nil {
			d = new(gzipDecoder)
		}
		defer gzipDecoders.Put(d)
		d.src.Reset(body)
		if err := d.zr.Reset(&d.src); err != nil {
			return dst, err
		}
		return readLimited(dst, &d.zr, max)
	case codingDeflate:
		d, _ := zlibDecoders.Get().(*zlibDecoder)
		if d == nil {
			d = new(zlibDecoder)
		}
		d.src.Reset(body)
		var err error
		if d.zr == nil {
			d.zr, err = zlib.NewReader(&d.src)
		} else {
			err = d.zr.(zlib.Resetter).Reset(&d.src, nil)
		}
		if err != nil {
			// A reader whose Reset failed is not reused: zlib leaves it holding the error.
			return dst, err
		}
		defer zlibDecoders.Put(d)
		return readLimited(dst, d.zr, max)
	case codingBrotli:
		d, _ := brotliDecoders.Get().(*brotliDecoder)
		if d == nil {
			d = new(brotliDecoder)
		}
		defer brotliDecoders.Put(d)
		d.src.Reset(body)
		if d.br == nil {
			d.br = brotli.NewReader(&d.src)
		} else {
			d.br.Reset(&d.src)
		}
		return readLimited(dst, d.br, max)
	}
	return dst, errCoding
}

// readLimited appends what r yields to dst until EOF, failing once it passes max bytes.
func readLimited(dst []byte, r io.Reader, max int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		room := cap(dst) - len(dst)
		if over := len(dst) - start + room - (max + 1); over > 0 {
			room -= over
		}
		n, err := r.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+n]
		switch {
		case len(dst)-start > max:
			return dst[:start], errDecodedTooLarge
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst[:start], err
		}
	}
}
