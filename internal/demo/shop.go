package demo

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed shop
var shopFiles embed.FS

// CMPs are the banners the shop can use (?cmp=): its own (consentgate.set), or a stand-in
// for a consent banner's public JavaScript API.
var CMPs = []string{"own", "cookiebot", "onetrust", "tcf", "gpp", "consentmode"}

// ShopOptions set up the demo shop.
type ShopOptions struct {
	Addr string
	// ProxyPort is the port of the proxy's public listener: the page loads consentgate.js
	// and sends its tags to its own host name on that port, so that the shop and the
	// proxy are two origins of one site, whatever name the browser used.
	ProxyPort string
	// ProxyOrigin, when set, is used instead ("http://t.shop.test:8080").
	ProxyOrigin string
	// Dashboard is the dashboard's URL, for the page's footer.
	Dashboard string
	// ConsentCookie is the proxy's consent cookie name (consent.cookie), default cg_id.
	ConsentCookie string
	Sink          *Sink
	Proxy         *Proxy
	// Extra, when set, serves /test/ (the browser tests' own pages).
	Extra http.Handler
}

// Shop is the static demo shop with the two endpoints its panels read: the hits the
// sink received and the visitor's consent receipts.
type Shop struct {
	o   ShopOptions
	srv *http.Server
	ln  net.Listener
}

// StartShop serves the shop on o.Addr.
func StartShop(o ShopOptions) (*Shop, error) {
	if o.ConsentCookie == "" {
		o.ConsentCookie = "cg_id"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("shop: listen on %s: %w", o.Addr, err)
	}
	s := &Shop{o: o, ln: ln}
	static, _ := fs.Sub(shopFiles, "shop")
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", noStore(http.FileServerFS(static))))
	mux.HandleFunc("/demo/hits", s.hits)
	mux.HandleFunc("/demo/receipts", s.receipts)
	if o.Extra != nil {
		mux.Handle("/test/", noStore(o.Extra))
	}
	mux.HandleFunc("/", s.index)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the shop's base URL.
func (s *Shop) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the shop.
func (s *Shop) Close() error { return s.srv.Close() }

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

var indexPage = template.Must(template.ParseFS(shopFiles, "shop/index.html"))

// pageSettings are what the page's script reads (window.DEMO).
type pageSettings struct {
	Proxy     string `json:"proxy"`
	CMP       string `json:"cmp"`
	Prior     string `json:"prior"` // the stand-in banner's choice from an "earlier visit": accept, reject or ""
	Late      bool   `json:"late"`  // load consentgate.js after the page, not before the tags
	Dashboard string `json:"dashboard"`
	// Since is how many hits the sink held when the page was served: the page's panel
	// shows the ones after.
	Since int `json:"since"`
}

func (s *Shop) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	st := pageSettings{Proxy: s.proxyOrigin(r), CMP: q.Get("cmp"), Prior: q.Get("prior"), Late: q.Get("late") == "1", Dashboard: s.o.Dashboard}
	if s.o.Sink != nil {
		st.Since = len(s.o.Sink.Hits())
	}
	if !contains(CMPs, st.CMP) {
		st.CMP = "own"
	}
	if st.Prior != "accept" && st.Prior != "reject" {
		st.Prior = ""
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := indexPage.Execute(w, struct {
		Settings         pageSettings
		CMP, Proxy, Dash string
		Late             bool
		CMPs             []string
	}{st, st.CMP, st.Proxy, st.Dashboard, st.Late, CMPs}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Shop) proxyOrigin(r *http.Request) string {
	if s.o.ProxyOrigin != "" {
		return s.o.ProxyOrigin
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + ":" + s.o.ProxyPort
}

func (s *Shop) hits(w http.ResponseWriter, r *http.Request) {
	if s.o.Sink == nil {
		http.NotFound(w, r)
		return
	}
	s.o.Sink.serveHits(w, r)
}

// receipts answers the visitor's proof-of-consent receipts, read from the admin API
// with the consent cookie the browser sends here too (cookies are per host, not per
// port). After a withdrawal the browser has no consent cookie any more, so the shop
// remembers the last ID in a cookie of its own (a demo convenience: a real site has no
// need to know the ID).
func (s *Shop) receipts(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id := ""
	if c, err := r.Cookie(s.o.ConsentCookie); err == nil && c.Value != "" {
		id, _, _ = strings.Cut(c.Value, ".")
		http.SetCookie(w, &http.Cookie{Name: "demo_receipts", Value: id, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	} else if c, err := r.Cookie("demo_receipts"); err == nil {
		id = c.Value
	}
	out := struct {
		Receipts json.RawMessage `json:"receipts"`
	}{json.RawMessage("[]")}
	if id != "" && s.o.Proxy != nil {
		code, body, err := s.o.Proxy.Admin("GET", "/admin/consent/"+url.PathEscape(id)+"/history")
		if err == nil && code == http.StatusOK {
			out.Receipts = body
		}
	}
	json.NewEncoder(w).Encode(out)
}
