package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// scriptLogEvery is the least time between two log lines about one script's failed fetches.
const scriptLogEvery = 10 * time.Second

// scriptFetchConns bounds the connections to one vendor host for scripts: fetches are
// coalesced and cached, so a handful carry any load, and past them a fetch fails fast
// (connect) instead of queueing visitors behind a slow vendor.
const scriptFetchConns = 16

// fetchError is a failed fetch. notFound: the vendor answered a 4xx, remembered as
// "no such script" for negative_ttl.
type fetchError struct {
	kind     telemetry.ScriptErrorKind
	status   int
	notFound bool
	err      error
}

func (e *fetchError) Error() string {
	if e.err != nil {
		return e.kind.String() + ": " + e.err.Error()
	}
	return fmt.Sprintf("%s: vendor answered %d", e.kind, e.status)
}

// fetch gets the script at key from its vendor, once for all the requests that miss on
// key at the same time, and caches what it got: the script, a 4xx as "no such script",
// or a failure as a 502 that stands for negative_ttl when there is nothing older to
// serve. On failure an entry already cached stays, and is not retried before
// negative_ttl.
func (ss *scriptServer) fetch(s *Server, rt *runtime, idx int, key []byte, variant uint64, vals *[config.MaxScriptParams][]byte) (*scriptEntry, error) {
	sc, metric := &rt.Scripts.Scripts[idx], rt.scriptMetric[idx]
	k := string(key) // a miss: about to wait on a vendor, one allocation is nothing
	if ss.waiting != nil {
		ss.waiting()
	}
	v, err, _ := ss.group.Do(k, func() (any, error) {
		// A request that missed just as another flight for the key finished starts a
		// flight of its own: what that one fetched is fresh, and is not fetched again.
		if e := ss.cache.get(key); e != nil && e.status == fasthttp.StatusOK && ss.now().UnixNano() < e.fresh {
			return e, nil
		}
		cfg := &rt.Config.Scripts
		f, ferr := fetchScript(rt.scriptClients[idx], cfg, sc, variant, vals)
		now := ss.now()
		nowNs := now.UnixNano()
		if ferr == nil {
			e := f.scriptEntry
			e.fresh = now.Add(f.ttl(cfg)).UnixNano()
			e.stale = e.fresh + int64(cfg.Cache.StaleIfError)
			ss.cache.put(k, e, nowNs)
			return e, nil
		}
		s.metrics.ScriptVendorError(metric, ferr.kind)
		// Names the script and what went wrong, never the URL: its parameters are the
		// site's (a Tag Manager environment's gtm_auth among them). At most one line per
		// script per scriptLogEvery: requests for made-up IDs, each a fetch the vendor
		// refuses, must not flood the log (the metric counts every one).
		if last := &ss.lastLog[metric%len(ss.lastLog)]; nowNs-last.Load() >= int64(scriptLogEvery) {
			last.Store(nowNs)
			s.log.Warn("tag script fetch failed", "script", sc.Name, "kind", ferr.kind.String(), "status", ferr.status)
		}
		retry := nowNs + int64(cfg.Cache.NegativeTTL)
		old := ss.cache.get(key)
		switch {
		case ferr.notFound:
			ss.cache.put(k, &scriptEntry{status: fasthttp.StatusNotFound, fresh: retry, stale: retry}, nowNs)
		case old != nil && old.status == fasthttp.StatusOK && nowNs < old.stale:
			old.retryAt.Store(retry)
		default:
			ss.cache.put(k, &scriptEntry{status: fasthttp.StatusBadGateway, fresh: retry, stale: retry}, nowNs)
		}
		return nil, ferr
	})
	if err != nil {
		return nil, err
	}
	return v.(*scriptEntry), nil
}

// fetched is what fetchScript read: the entry's content, and the vendor's freshness.
type fetched struct {
	*scriptEntry
	maxAge time.Duration // from Cache-Control or Expires; -1 = the vendor said nothing
}

// ttl is how long the entry is fresh: the vendor's word within [min_ttl, max_ttl]. A
// vendor's no-store or no-cache counts as 0, so the floor applies: the proxy is the one
// cache that must keep a script a while, or every page view would be a vendor fetch.
// "private" is not honoured: the request that fetched the script carried nothing of any
// visitor, so the answer cannot be personal to one.
func (f fetched) ttl(cfg *config.ScriptsConfig) time.Duration {
	if f.maxAge < 0 {
		return cfg.Cache.MinTTL
	}
	return min(max(f.maxAge, cfg.Cache.MinTTL), cfg.Cache.MaxTTL)
}

// fetchScript does one GET of the script from its vendor. The request is built here from
// the script's URL and the checked parameters: no header, cookie or address of the
// visitor's request is in it (there is nothing of the visitor's request at hand).
func fetchScript(hc *fasthttp.HostClient, cfg *config.ScriptsConfig, sc *rules.Script, variant uint64, vals *[config.MaxScriptParams][]byte) (fetched, *fetchError) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	// The whole URL: fasthttp takes the Host header from it.
	req.SetRequestURIBytes(sc.AppendKey(nil, variant, vals))
	req.URI().DisablePathNormalizing = true
	req.Header.SetUserAgent(upstreamClientName)
	req.Header.Set(fasthttp.HeaderAccept, "*/*")
	req.Header.Set(fasthttp.HeaderAcceptEncoding, "gzip")
	if err := hc.DoDeadline(req, resp, time.Now().Add(cfg.Timeout)); err != nil {
		return fetched{}, &fetchError{kind: scriptErrorKind(err), err: err}
	}
	switch code := resp.StatusCode(); {
	case code == fasthttp.StatusOK:
	case code >= 400 && code < 500 && code != fasthttp.StatusRequestTimeout && code != fasthttp.StatusTooManyRequests:
		return fetched{}, &fetchError{kind: telemetry.ScriptVendorStatus, status: code, notFound: true}
	default:
		// A redirect is not followed: the catalogue or the config names the script's
		// URL, and nothing the vendor says sends the proxy elsewhere.
		return fetched{}, &fetchError{kind: telemetry.ScriptVendorStatus, status: code}
	}
	if ct := resp.Header.ContentType(); len(ct) > 0 && !bytes.Contains(bytes.ToLower(ct), []byte("javascript")) &&
		!bytes.Contains(bytes.ToLower(ct), []byte("ecmascript")) {
		// An error page sent with 200 (a captive portal, a CDN's HTML) is not a script
		// and must not be cached as one.
		return fetched{}, &fetchError{kind: telemetry.ScriptVendorOther, status: fasthttp.StatusOK, err: fmt.Errorf("content type %.64q", ct)}
	}
	body, ferr := decodeScript(resp, cfg.MaxSize)
	if ferr != nil {
		return fetched{}, ferr
	}
	e := &scriptEntry{status: fasthttp.StatusOK, body: body}
	sum := sha256.Sum256(body)
	e.etag = append(append([]byte(`W/"`), hex.EncodeToString(sum[:12])...), '"')
	e.gz = gzipScript(body)
	return fetched{scriptEntry: e, maxAge: vendorMaxAge(&resp.Header)}, nil
}

// decodeScript returns the body, decoded from gzip if so sent, refused past maxSize
// decoded bytes (a small gzip can hold a large body).
func decodeScript(resp *fasthttp.Response, maxSize int) ([]byte, *fetchError) {
	raw := resp.Body()
	switch ce := resp.Header.ContentEncoding(); {
	case len(ce) == 0 || string(ce) == "identity":
		if len(raw) > maxSize {
			return nil, &fetchError{kind: telemetry.ScriptVendorTooLarge, status: fasthttp.StatusOK, err: errors.New("body over max_size")}
		}
		return bytes.Clone(raw), nil
	case string(ce) == "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, &fetchError{kind: telemetry.ScriptVendorOther, status: fasthttp.StatusOK, err: err}
		}
		body, err := io.ReadAll(io.LimitReader(zr, int64(maxSize)+1))
		if err != nil {
			return nil, &fetchError{kind: telemetry.ScriptVendorOther, status: fasthttp.StatusOK, err: err}
		}
		if len(body) > maxSize {
			return nil, &fetchError{kind: telemetry.ScriptVendorTooLarge, status: fasthttp.StatusOK, err: errors.New("decoded body over max_size")}
		}
		return body, nil
	default:
		return nil, &fetchError{kind: telemetry.ScriptVendorOther, status: fasthttp.StatusOK, err: fmt.Errorf("content encoding %.32q", ce)}
	}
}

// gzipWriters compress at the default level: on a 350 KB script it takes a tenth of the
// time of the best level (10 ms against 130 ms, on the request that missed) for 3 % more
// bytes.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// gzipScript compresses a script once, when it is fetched, so that every browser that
// takes gzip gets it so; nil when that does not make it smaller.
func gzipScript(body []byte) []byte {
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&b)
	if _, err := zw.Write(body); err != nil || zw.Close() != nil || b.Len() >= len(body) {
		return nil
	}
	return b.Bytes()
}

// vendorMaxAge reads how long the vendor says its answer is fresh: s-maxage (meant for
// shared caches such as this one) or max-age, no-store/no-cache as 0, else Expires
// against Date; -1 when it says nothing.
func vendorMaxAge(h *fasthttp.ResponseHeader) time.Duration {
	cc := h.Peek(fasthttp.HeaderCacheControl)
	maxAge, sMaxAge := time.Duration(-1), time.Duration(-1)
	for len(cc) > 0 {
		var d []byte
		if i := indexByte(cc, ','); i >= 0 {
			d, cc = cc[:i], cc[i+1:]
		} else {
			d, cc = cc, nil
		}
		d = trimSpace(d)
		name, val := d, []byte(nil)
		if i := indexByte(d, '='); i >= 0 {
			name, val = trimSpace(d[:i]), bytes.Trim(trimSpace(d[i+1:]), `"`)
		}
		switch {
		case equalFold(name, "no-store"), equalFold(name, "no-cache"):
			return 0
		case equalFold(name, "max-age"):
			maxAge = parseSeconds(val)
		case equalFold(name, "s-maxage"):
			sMaxAge = parseSeconds(val)
		}
	}
	switch {
	case sMaxAge >= 0:
		return sMaxAge
	case maxAge >= 0:
		return maxAge
	}
	exp := h.Peek(fasthttp.HeaderExpires)
	if len(exp) == 0 {
		return -1
	}
	expires, err := fasthttp.ParseHTTPDate(exp)
	if err != nil {
		return 0 // an unreadable Expires means already expired (RFC 9111 §5.3)
	}
	date, err := fasthttp.ParseHTTPDate(h.Peek(fasthttp.HeaderDate))
	if err != nil {
		date = time.Now()
	}
	return min(max(expires.Sub(date), 0), maxDeltaSeconds*time.Second)
}

// maxDeltaSeconds is where delta-seconds saturate (RFC 9111 §1.2.2: 2^31).
const maxDeltaSeconds = 1 << 31

// parseSeconds reads delta-seconds: digits, saturating at maxDeltaSeconds; anything else
// counts as 0 (already stale).
func parseSeconds(v []byte) time.Duration {
	if len(v) == 0 {
		return 0
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		if n = n*10 + int(c-'0'); n >= maxDeltaSeconds {
			n = maxDeltaSeconds
		}
	}
	return time.Duration(n) * time.Second
}

func scriptErrorKind(err error) telemetry.ScriptErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return telemetry.ScriptVendorTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return telemetry.ScriptVendorTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return telemetry.ScriptVendorTooLarge
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnectionClosed):
		return telemetry.ScriptVendorConnect
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return telemetry.ScriptVendorConnect
	}
	if isTLSError(err) {
		return telemetry.ScriptVendorConnect
	}
	return telemetry.ScriptVendorOther
}

// isTLSError: the vendor's certificate did not verify (TLS verification is always on),
// or the handshake failed.
func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var rh tls.RecordHeaderError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &rh)
}

// scriptsPart gives each script of a runtime its metric index and a client to its
// vendor, reusing the previous runtime's client for the same address and settings; on
// commit the cache takes the new bounds. The cache itself is the process's: a reload
// keeps what was fetched (entries are keyed by URL, so a script whose URL changed is
// simply fetched anew).
type scriptsPart struct{ s *Server }

func (p scriptsPart) prepare(prev, next *runtime) error {
	scripts := next.Scripts.Scripts
	cfg := &next.Config.Scripts
	byKey := map[string]*fasthttp.HostClient{}
	if prev != nil {
		for _, hc := range prev.scriptClients {
			if hc.ReadTimeout == cfg.Timeout && hc.MaxResponseBodySize == cfg.MaxSize {
				byKey[clientKey(hc.Addr, hc.IsTLS)] = hc
			}
		}
	}
	next.scriptMetric = make([]int, len(scripts))
	next.scriptClients = make([]*fasthttp.HostClient, len(scripts))
	for i := range scripts {
		sc := &scripts[i]
		idx, err := p.s.metrics.Script(sc.Name)
		if err != nil {
			return fmt.Errorf("scripts.%s: %w", sc.Name, err)
		}
		next.scriptMetric[i] = idx
		key := clientKey(sc.UpstreamAddr, sc.UpstreamTLS)
		hc := byKey[key]
		if hc == nil {
			hc = &fasthttp.HostClient{
				Addr:                          sc.UpstreamAddr,
				IsTLS:                         sc.UpstreamTLS, // TLSConfig nil: the system roots, the host name verified
				Name:                          upstreamClientName,
				NoDefaultUserAgentHeader:      true,
				ReadTimeout:                   cfg.Timeout,
				WriteTimeout:                  cfg.Timeout,
				MaxConns:                      scriptFetchConns,
				MaxConnWaitTimeout:            cfg.Timeout / 10,
				MaxIdleConnDuration:           30 * time.Second,
				MaxIdemponentCallAttempts:     1,
				DisableHeaderNamesNormalizing: false,
				DisablePathNormalizing:        true,
				// Read no further than a body that could be kept: a gzip body is
				// smaller than what it decodes to, which decodeScript bounds again.
				MaxResponseBodySize: cfg.MaxSize,
			}
			byKey[key] = hc
		}
		next.scriptClients[i] = hc
	}
	return nil
}

func (p scriptsPart) commit(next *runtime) {
	c := &next.Config.Scripts.Cache
	p.s.scripts.cache.setLimits(c.MaxBytes, c.MaxEntries)
}

func (scriptsPart) abort(*runtime) {}
