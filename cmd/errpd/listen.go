package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/errpd/errpd/config"
)

// listener is one of errpd's HTTP listeners with its server: bounded in
// time (every read, write and idle wait has a deadline) and in number (at
// most http.max_connections open; more wait in the kernel's backlog and
// cost no descriptor), so that a flood cannot take the descriptors the
// store, the relay and the admin socket need.
type listener struct {
	name string // "http" or "metrics", in logs and metrics
	ln   net.Listener
	srv  *http.Server
}

// httpMetrics are the listeners' metrics.
type httpMetrics struct {
	open    *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "errpd_http_open_connections",
			Help: "HTTP connections open, by listener; at http.max_connections new ones wait.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "errpd_http_refused_connections_total",
			Help: "HTTP connections closed at accept because their address is not in http.allow_from.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.open, m.refused)
	return m
}

// listenHTTP opens addr for handler. When allow is not empty, connections
// from other addresses are closed as soon as they are accepted.
func listenHTTP(name, addr string, h config.HTTP, allow []netip.Prefix, handler http.Handler, log *slog.Logger, m *httpMetrics) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	log = log.With("listener", name)
	if len(allow) > 0 {
		warn := &sometimes{gap: time.Minute}
		ln = &allowListener{Listener: ln, allow: allow, refused: func(remote string) {
			m.refused.WithLabelValues(name).Inc()
			if warn.ok(time.Now()) {
				log.Warn("connection refused: address not in http.allow_from (logged at most once a minute; see errpd_http_refused_connections_total)", "remote", remote)
			}
		}}
	}
	l := &listener{name: name, ln: netutil.LimitListener(ln, h.MaxConnections)}
	l.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(10*time.Second, h.ReadTimeout),
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    h.MaxHeaderBytes,
		// net/http's own complaints ("http: Accept error", TLS and panic
		// reports) go through errpd's logger, as JSON when log.format is.
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState: connCounter(name, h.MaxConnections, log, m),
	}
	return l, nil
}

// connCounter keeps errpd_http_open_connections and tells the operator,
// at most once a minute, when the cap is reached.
func connCounter(name string, max int, log *slog.Logger, m *httpMetrics) func(net.Conn, http.ConnState) {
	var open atomic.Int64
	gauge := m.open.WithLabelValues(name)
	warn := &sometimes{gap: time.Minute}
	return func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n := open.Add(1)
			gauge.Set(float64(n))
			if n >= int64(max) && warn.ok(time.Now()) {
				log.Warn("http.max_connections reached: new connections wait until one closes (logged at most once a minute)", "max_connections", max)
			}
		case http.StateClosed, http.StateHijacked:
			gauge.Set(float64(open.Add(-1)))
		}
	}
}

// allowListener closes, at accept, connections from addresses outside
// allow: they cost neither a request's deadline nor a connection slot.
type allowListener struct {
	net.Listener
	allow   []netip.Prefix
	refused func(remote string)
}

func (l *allowListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.allowed(c.RemoteAddr()) {
			return c, nil
		}
		// Counted and logged before the close, so that whoever sees the
		// connection closed also finds it in the metrics and the log.
		l.refused(c.RemoteAddr().String())
		c.Close()
	}
}

func (l *allowListener) allowed(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := tcp.AddrPort().Addr().Unmap()
	for _, p := range l.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// sometimes says yes at most once per gap, so that a flood is logged
// without flooding the log.
type sometimes struct {
	gap  time.Duration
	last atomic.Int64 // unix nanoseconds of the last yes
}

func (s *sometimes) ok(now time.Time) bool {
	last := s.last.Load()
	if last != 0 && now.UnixNano()-last < int64(s.gap) {
		return false
	}
	return s.last.CompareAndSwap(last, now.UnixNano())
}

// checkFileLimit warns when the process's descriptor limit leaves too
// little beside the HTTP listeners' caps for the store, the relay's
// connections, Ascio and the admin socket.
func checkFileLimit(c config.Config, listeners int, log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	const reserve = 64 // store, admin socket and its clients, Ascio, DNS, logs
	need := uint64(listeners*c.HTTP.MaxConnections + c.SMTP.MaxConnections + reserve)
	if lim.Cur < need {
		log.Warn("the file descriptor limit is too low for http.max_connections: lower it or raise the limit (LimitNOFILE=)",
			"limit", lim.Cur, "need", need, "max_connections", c.HTTP.MaxConnections)
	}
}

// openListeners opens http.listen for mux and, when set,
// http.metrics_listen for ops; the first is http.listen's.
func openListeners(c config.Config, mux, ops http.Handler, log *slog.Logger, m *httpMetrics) ([]*listener, error) {
	public, err := listenHTTP("http", c.HTTP.Listen, c.HTTP, c.HTTP.AllowPrefixes(), mux, log, m)
	if err != nil {
		return nil, err
	}
	if c.HTTP.MetricsListen == "" {
		return []*listener{public}, nil
	}
	// The metrics listener takes no allow_from: bind it to loopback or a
	// monitoring network.
	metrics, err := listenHTTP("metrics", c.HTTP.MetricsListen, c.HTTP, nil, ops, log, m)
	if err != nil {
		public.ln.Close()
		return nil, err
	}
	return []*listener{public, metrics}, nil
}

// shutdown stops every listener, letting requests in flight finish.
func shutdown(ctx context.Context, ls []*listener) error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
