package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/errpd/errpd/admin"
)

// meter counts a long command's work (bytes read or written): as a
// progress bar when stderr is a terminal, as progress frames to the client
// when the command runs inside the daemon for one, else not at all.
type meter interface {
	Add64(n int64) error
	Finish() error
}

// meter returns the meter for label over total units (-1: unknown); log
// is where it logs without a terminal.
func (a *app) meter(log *slog.Logger, label string, total int64) meter {
	if a.call != nil {
		return newFrameMeter(a.call.Progress, label, total)
	}
	return a.localMeter(log, label, total)
}

// localMeter is a progress bar on a terminal, else a log line at each
// tenth of a large work of known size (an import run by cron or systemd:
// the operator sees in the journal how far it got); never frames.
func (a *app) localMeter(log *slog.Logger, label string, total int64) meter {
	if a.call == nil {
		if bar := a.bar(label, total); bar != nil {
			return bar
		}
		if total >= 1<<20 {
			return newLogMeter(log, label, total)
		}
	}
	return noMeter{}
}

// tenths logs a long work's progress at each tenth of its total, where
// there is no terminal for a bar: the rewrites of the store (records) and
// import and backup (bytes).
type tenths struct {
	log  *slog.Logger
	msg  string
	last int64 // the last tenth logged
}

// at logs when done has crossed another tenth of total, with attrs and
// the percent.
func (t *tenths) at(done, total int64, attrs ...any) {
	if total <= 0 {
		return
	}
	if tenth := done * 10 / total; tenth > t.last {
		t.last = tenth
		t.log.Info(t.msg, append(attrs, "percent", tenth*10)...)
	}
}

// logMeter is a meter of bytes that logs at each tenth of total.
type logMeter struct {
	tenths
	done, total int64
}

func newLogMeter(log *slog.Logger, label string, total int64) *logMeter {
	return &logMeter{tenths: tenths{log: log, msg: label}, total: total}
}

func (m *logMeter) Add64(n int64) error {
	m.done += n
	m.at(m.done, m.total, "done_bytes", m.done, "total_bytes", m.total)
	return nil
}

func (m *logMeter) Finish() error { return nil }

// bar is a progress bar on stderr when it is a terminal and the work is
// large enough (or of unknown size) to make one worth showing.
func (a *app) bar(label string, total int64) *progressbar.ProgressBar {
	out, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) || (total >= 0 && total < 1<<20) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
	)
}

// drawProgress is the client's side: it draws the daemon's progress frames
// as the command would draw its bar locally.
func (a *app) drawProgress() admin.Option {
	var bar *progressbar.ProgressBar
	started := false
	return admin.WithProgressFrames(func(p admin.Progress) {
		if !started {
			started = true
			bar = a.bar(p.Label, p.Total)
		}
		if bar == nil {
			return
		}
		bar.Set64(p.Done)
		if p.Total >= 0 && p.Done >= p.Total {
			bar.Finish()
		}
	})
}

type noMeter struct{}

func (noMeter) Add64(int64) error { return nil }
func (noMeter) Finish() error     { return nil }

// frameMeter sends a frame each time the work crosses another hundredth
// of total (each MiB when total is unknown), and one at the end: at most
// about a hundred frames, however large the work.
type frameMeter struct {
	send        func(admin.Progress) error
	label       string
	done, total int64
	next, step  int64
}

func newFrameMeter(send func(admin.Progress) error, label string, total int64) *frameMeter {
	step := int64(1 << 20)
	if total > 0 {
		step = max(total/100, 1)
	}
	m := &frameMeter{send: send, label: label, total: total, step: step}
	m.next = step
	return m
}

func (m *frameMeter) Add64(n int64) error {
	m.done += n
	if m.done < m.next {
		return nil
	}
	m.next = (m.done/m.step + 1) * m.step
	return m.send(admin.Progress{Label: m.label, Done: m.done, Total: m.total})
}

func (m *frameMeter) Finish() error {
	total := m.total
	if total < 0 {
		total = m.done // now known: the bar ends full
	}
	return m.send(admin.Progress{Label: m.label, Done: m.done, Total: total})
}

// meterReader counts what is read through it.
type meterReader struct {
	r interface{ Read([]byte) (int, error) }
	m meter
}

func (r meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.Add64(int64(n))
	return n, err
}

// meterWriter counts what is written through it.
type meterWriter struct {
	w interface{ Write([]byte) (int, error) }
	m meter
}

func (w meterWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.m.Add64(int64(n))
	return n, err
}

// gcPercent sets the collector's GOGC for a command's work, unless the
// GOGC environment variable sets it; the returned func puts it back.
func gcPercent(p int) (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(p)
	return func() { debug.SetGCPercent(old) }
}
