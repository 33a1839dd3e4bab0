package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// Prefix is the path the dashboard is mounted at on the admin listener.
const Prefix = "/dashboard"

// CSP is the Content-Security-Policy sent with every response. The page loads nothing
// from other origins and runs no inline script or style.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"

//go:embed assets
var assetFS embed.FS

type asset struct {
	body        []byte
	contentType string
	etag        string // quoted strong validator: the content's SHA-256, shortened
}

// assets maps a request path ("/dashboard/app.js") to its file. It is built once at
// init from the embedded files, which never change for the life of the binary.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	m := make(map[string]*asset)
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "assets/")
		m[Prefix+"/"+name] = &asset{
			body:        body,
			contentType: contentType(name),
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("dashboard: reading embedded assets: " + err.Error())
	}
	index := m[Prefix+"/index.html"]
	if index == nil {
		panic("dashboard: embedded assets lack index.html")
	}
	m[Prefix] = index
	m[Prefix+"/"] = index
	return m
}

// contentType is fixed per extension rather than taken from the system MIME tables, so
// the header is the same on every machine.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Handler serves the dashboard page and its assets. Mount it for "/dashboard" and every
// path under "/dashboard/"; any other path gets 404.
func Handler() fasthttp.RequestHandler {
	return serve
}

func serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", CSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")

	a := assets[string(ctx.Path())]
	if a == nil {
		plain(ctx, fasthttp.StatusNotFound, "404 page not found")
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		h.Set("Allow", "GET, HEAD")
		plain(ctx, fasthttp.StatusMethodNotAllowed, "405 method not allowed")
		return
	}
	h.Set("ETag", a.etag)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && etagMatch(inm, a.etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType(a.contentType)
	// fasthttp sends the Content-Length of the body and leaves the body out for HEAD.
	ctx.SetBody(a.body)
}

// plain answers with a short text body. (ctx.Error would also reset the headers set
// above.)
func plain(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg)
}

// etagMatch reports whether an If-None-Match list names etag (weak comparison, RFC 9110).
func etagMatch(list []byte, etag string) bool {
	for _, v := range bytes.Split(list, []byte(",")) {
		v = bytes.TrimSpace(v)
		v = bytes.TrimPrefix(v, []byte("W/"))
		if string(v) == "*" || string(v) == etag {
			return true
		}
	}
	return false
}
