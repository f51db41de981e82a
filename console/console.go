// Package console is the operator console: a small web UI that errpd serve
// offers on [console] listen. Server-rendered html/template pages over the
// same store paths as the CLI (store views, the report package, preview,
// resolve); no script is needed, every asset is embedded, every page but
// the login form needs a session and every POST is checked for a
// cross-origin request.
//
// It never holds the dispatcher back: pages read in short read
// transactions, downloads stream the report in chunks (report.Rows), the
// monthly compliance chart is cached for a minute, and lists are capped
// or paginated.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/store"
)

//go:embed templates/*.html
var pageFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options are what the console works with.
type Options struct {
	DB *store.DB
	// Users maps a login name to its bcrypt hash.
	Users map[string]string
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	Log        *slog.Logger
	// Now is the clock (time.Now in the daemon).
	Now func() time.Time
	// Build renders a notice as errpd would send it (the daemon's current
	// templates and brands), for the preview.
	Build func(message.Input) (message.Message, error)
	// SigningKey is the path of the evidence signing key; empty offers no
	// evidence download.
	SigningKey string
	// Wake tells the dispatcher that an action made work due.
	Wake func()
}

// Server is the console's HTTP handler and its in-memory state (sessions,
// login limits, the chart's cache); all of it ends with the daemon.
type Server struct {
	o        Options
	pages    map[string]*template.Template
	sessions *sessions
	limits   *limits
	handler  http.Handler

	statsMu  sync.Mutex
	stats    *stats // the last scan for the overview, with its time
	scanning bool   // a scan runs
}

// New makes the console's handler.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	// Made now, in the background: were it made at the first login with an
	// unknown name, that login would take twice as long as a wrong
	// password, telling that the name is unknown.
	go dummyHash()
	s := &Server{o: o, pages: pages, sessions: newSessions(o.SessionTTL, o.Now), limits: newLimits(o.Now)}
	static, _ := fs.Sub(staticFiles, "static")

	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /domains", s.search)
	mux.HandleFunc("GET /domains/{name}", s.domain)
	mux.HandleFunc("GET /domains/{name}/preview", s.preview)
	mux.HandleFunc("GET /domains/{name}/evidence.zip", s.evidence)
	mux.HandleFunc("GET /message.eml", s.eml)
	mux.HandleFunc("POST /resolve", s.resolve)
	mux.HandleFunc("GET /report", s.reportForm)
	mux.HandleFunc("GET /report/download", s.reportDownload)

	// Every POST (login included) is refused when it comes from another
	// origin: a page elsewhere cannot act with an operator's session.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.o.Log.Warn("console: cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	s.handler = securityHeaders(cop.Handler(s.requireSession(mux)))
	return s, nil
}

// ServeHTTP serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// securityHeaders: no framing, no sniffing, nothing loaded from elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// parsePages parses each page with the layout, once, at start.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(pageFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := n[len("templates/"):]
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(pageFiles, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

// page is what every page's template gets.
type page struct {
	Title string
	User  string
	Nav   string // which tab is current
	Data  any
}

// render writes a page; a template error after the first byte can only be
// logged.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	p := page{Title: title, User: userOf(r), Nav: nav, Data: data}
	if err := s.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		s.o.Log.Error("console: page failed", "page", name, "err", err)
	}
}

// fail shows an error page; err's text is errpd's own (store and
// validation errors), never a secret.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.o.Log.Error("console: request failed", "path", r.URL.Path, "err", err)
	}
	s.render(w, r, status, "error.html", http.StatusText(status), "", err.Error())
}
