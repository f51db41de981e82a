package lifecycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Domains reads a domain from Ascio (ascio.Client does): by its handle,
// or by its name when errpd never learnt the handle.
type Domains interface {
	GetDomain(ctx context.Context, handle string) (ascio.Domain, error)
	GetDomainByName(ctx context.Context, name string) (ascio.Domain, error)
}

// RenewalChecker asks Ascio, policy.renewal_check_after past each
// renew-mode domain's expiry, whether it renewed: an unchanged expiry is
// evidence it did not (the post-expiry notices are then owed), a later
// one closes the cycle as renewed and plans the next. The checks fall due
// from the store's renewal index.
type RenewalChecker struct {
	DB    *store.DB
	Ascio Domains
	Plan  store.PlanOptions
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Retry spaces the attempts after temporary errors (the coverage
	// check's policy); coverage.DefaultRetry when zero.
	Retry coverage.Retry
	// Idle bounds a wait; an hour when zero.
	Idle time.Duration
	Log  *slog.Logger
}

// Run checks what is due, then sleeps until the next check (or Idle),
// until ctx ends.
func (r *RenewalChecker) Run(ctx context.Context) error {
	coverage.Loop(ctx, r.RunOnce, r.now, r.Idle, func(err error) { r.log().Error("renewal check failed", "err", err) })
	return nil
}

// RunOnce settles every check due now and returns when the next falls due
// (zero when none waits).
func (r *RenewalChecker) RunOnce(ctx context.Context) (time.Time, error) {
	now := r.now()
	for {
		var due []store.RenewalCheck
		if err := r.DB.View(func(tx *store.Tx) error { due = tx.RenewalChecksDue(now, 100); return nil }); err != nil {
			return time.Time{}, err
		}
		for _, c := range due {
			if err := r.check(ctx, c, now); err != nil {
				return time.Time{}, err
			}
		}
		if len(due) < 100 {
			break
		}
	}
	var next time.Time
	err := r.DB.View(func(tx *store.Tx) error { next, _ = tx.NextRenewalCheck(); return nil })
	return next, err
}

// check asks Ascio about one cycle, unless it needs no asking any more.
func (r *RenewalChecker) check(ctx context.Context, c store.RenewalCheck, now time.Time) error {
	var d store.Domain
	var why string
	if err := r.DB.View(func(tx *store.Tx) error {
		var err error
		d, why, err = owesCheck(tx, c.Cycle)
		return err
	}); err != nil {
		return err
	}
	if why != "" {
		r.log().Debug("renewal check dropped", "cycle", c.Cycle, "why", why)
		return r.DB.Update(func(tx *store.Tx) error { return tx.DropRenewalCheck(c) })
	}
	got, op, err := r.lookup(ctx, d)
	if err != nil && failure.Of(err) == failure.Temporary {
		retry := r.Retry
		if retry.Attempts == 0 {
			retry = coverage.DefaultRetry
		}
		if at, ok := retry.Next(c.Attempts+1, now, rand.Float64()); ok {
			r.log().Warn("renewal check: "+op+" failed, will retry", "domain", d.Name, "at", at, "err", err)
			return r.DB.Update(func(tx *store.Tx) error { return tx.PostponeRenewalCheck(c, at) })
		}
	}
	if err != nil {
		// Without an answer errpd has no evidence: nothing post-expiry is
		// sent (a renewed domain must never get an "expired" notice). A
		// name Ascio does not hold is a not-found, as an unknown handle is.
		r.log().Error("renewal check: "+op+" failed, no evidence either way", "domain", d.Name, "err", err)
		return r.DB.Update(func(tx *store.Tx) error { return tx.DropRenewalCheck(c) })
	}
	ev, ok := RenewalAnswer(op, d, got, now)
	if !ok {
		r.log().Error("renewal check: "+op+" gave no expiry, no evidence either way", "domain", d.Name)
	}
	return r.DB.Update(func(tx *store.Tx) error {
		if ok {
			if _, _, err := Apply(tx, ev, r.Plan); err != nil {
				return err
			}
		}
		return tx.DropRenewalCheck(c)
	})
}

// lookup asks Ascio about a domain: by the handle Ascio's messages gave,
// else (a domain known from the calendar alone) by its name through
// GetDomains. op names the operation for the log.
func (r *RenewalChecker) lookup(ctx context.Context, d store.Domain) (ascio.Domain, string, error) {
	if d.Handle != "" {
		got, err := r.Ascio.GetDomain(ctx, d.Handle)
		return got, "GetDomain", err
	}
	got, err := r.Ascio.GetDomainByName(ctx, d.Name)
	return got, "GetDomains", err
}

// owesCheck returns the domain whose cycle key is due a check, or why it
// needs none.
func owesCheck(tx *store.Tx, key string) (store.Domain, string, error) {
	c, ok, err := tx.Cycle(key)
	if err != nil || !ok {
		return store.Domain{}, "no such cycle", err
	}
	d, ok, err := tx.Domain(c.Domain)
	switch {
	case err != nil:
		return d, "", err
	case !ok || d.Cycle != key || !c.Closed.IsZero() || d.Stopped != "":
		return d, "not the domain's open cycle", nil
	case c.Mode != scheduler.ModeRenew || c.NotRenewed != nil:
		return d, "not a renew-mode cycle awaiting evidence", nil
	}
	return d, "", nil
}

// RenewalAnswer is the event of Ascio's answer (op: GetDomain, or
// GetDomains for a domain asked by name) about a stored domain at its
// renewal check: the same expiry is evidence it did not renew, a later one
// that it did. ok is false when Ascio gave no expiry: no evidence either
// way.
func RenewalAnswer(op string, d store.Domain, got ascio.Domain, now time.Time) (ev Event, ok bool) {
	if got.Expires.IsZero() {
		return Event{}, false
	}
	exp := got.Expires.UTC().Truncate(time.Second)
	at := now.UTC().Format(time.RFC3339)
	if exp.Equal(d.Expiry) {
		return Event{Kind: NotRenewed, Domain: store.Domain{Name: d.Name, Expiry: d.Expiry},
			Reason: fmt.Sprintf("%s at %s: expiry %s unchanged", op, at, rfc(d.Expiry))}, true
	}
	return Event{Kind: Facts, Domain: store.Domain{Name: d.Name, Expiry: exp},
		Reason: fmt.Sprintf("renewed (%s at %s)", op, at)}, true
}

func (r *RenewalChecker) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *RenewalChecker) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
