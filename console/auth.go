package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/errpd/errpd/internal/peertext"
)

const cookieName = "errpd_console"

// sessions are the logins in memory: they end with the daemon, or after
// their time to live.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	by  map[string]session // by token
}

type session struct {
	user    string
	expires time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, by: map[string]session{}}
}

// start makes a session for user and returns its token: 32 random bytes.
func (s *sessions) start(user string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	tok := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.by { // logins are rare: drop the expired ones here
		if !now.Before(v.expires) {
			delete(s.by, k)
		}
	}
	s.by[tok] = session{user: user, expires: now.Add(s.ttl)}
	return tok
}

// user is the session's user; false when there is none or it expired.
func (s *sessions) user(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.by[tok]
	if !ok || !s.now().Before(v.expires) {
		delete(s.by, tok)
		return "", false
	}
	return v.user, true
}

func (s *sessions) end(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, tok)
}

// limits holds one token bucket per (user, address) for failed logins:
// five at once, then one every twelve seconds.
type limits struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*rate.Limiter
}

const (
	loginBurst = 5
	loginEvery = 12 * time.Second
	maxLimits  = 10000 // buckets kept; past it the full ones are dropped
)

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, by: map[string]*rate.Limiter{}}
}

// allow reports whether a login for key may be tried now. Only failures
// take a token (fail), so an operator who types right is never held up.
func (l *limits) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.by[key]
	return !ok || lim.TokensAt(l.now()) >= 1
}

func (l *limits) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.by) >= maxLimits {
		for k, lim := range l.by {
			if lim.TokensAt(now) >= loginBurst {
				delete(l.by, k)
			}
		}
	}
	lim, ok := l.by[key]
	if !ok {
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.by[key] = lim
	}
	lim.AllowN(now, 1)
}

// dummyHash is compared against when the user is unknown, so that a
// wrong name takes as long as a wrong password. It is made when a console
// starts (New), not in init: a bcrypt hash costs about 60 ms of CPU, which
// every errpd command (a report, an import) paid when it was made there.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("errpd console: no such user"), bcrypt.DefaultCost)
	return h
})

type loginPage struct {
	Next, User, Error string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login.html", "Log in", "", loginPage{Next: localPath(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"))
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	key := user + "\x00" + host
	if !s.limits.allow(key) {
		s.o.Log.Warn("console: login refused, too many failures", "user", peertext.Cap(user), "remote", host)
		s.render(w, r, http.StatusTooManyRequests, "login.html", "Log in", "", loginPage{Next: next, User: user,
			Error: "Too many failed logins: wait a minute and try again."})
		return
	}
	hash, known := s.o.Users[user]
	if !known {
		hash = string(dummyHash())
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || !known {
		s.limits.fail(key)
		s.o.Log.Warn("console: login failed", "user", peertext.Cap(user), "remote", host, "known_user", known)
		s.render(w, r, http.StatusUnauthorized, "login.html", "Log in", "", loginPage{Next: next, User: user,
			Error: "Wrong user name or password."})
		return
	}
	s.o.Log.Info("console: login", "user", user, "remote", host)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: s.sessions.start(user), Path: "/",
		MaxAge: int(s.o.SessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath keeps a redirect target on this site: a path, not //host.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

type userKey struct{}

func userOf(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// requireSession lets /login and the static assets through; anything else
// needs a session. A page asked for without one is sent to the login form;
// a POST is refused.
func (s *Server) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/") {
			h.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(cookieName); err == nil {
			if user, ok := s.sessions.user(c.Value); ok {
				h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
				return
			}
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, "log in first", http.StatusUnauthorized)
	})
}
