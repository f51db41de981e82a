package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit. Every write transaction costs two fsyncs, so writers that
// arrive together share one: a single committer goroutine takes whatever
// is queued, runs it all in one transaction, and while that commits the
// next arrivals queue up for the following one. Unlike bbolt's own Batch,
// nothing ever waits on a timer for company: a lone writer commits at once,
// and under load the groups grow by themselves.

// maxGroup bounds one transaction, so that a flood of writers does not
// build one huge dirty-page set.
const maxGroup = 1000

// maxHold bounds how long a commit waits for the writes announced by
// SubmitFollowed.
const maxHold = 2 * time.Millisecond

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("store is closed")

// Pending is a submitted write; Wait blocks until it is committed (or
// failed). Writes submitted one after another commit in that order: when
// one is durable, so is everything submitted before it.
type Pending struct {
	fn     func(*Tx) error
	done   chan struct{}
	err    error
	follow *Hold // SubmitFollowed's announcement, armed when fn commits
}

// Wait returns the write's error once its transaction has ended.
func (p *Pending) Wait() error {
	<-p.done
	return p.err
}

// Done is closed once the write's transaction has ended.
func (p *Pending) Done() <-chan struct{} { return p.done }

func (p *Pending) finish(err error) {
	p.err = err
	close(p.done)
}

// committer owns the queue; it is started by Open for a writable store.
type committer struct {
	mu     sync.Mutex
	queue  []*Pending
	holds  int           // armed Holds: writes announced and not yet submitted
	more   chan struct{} // a wake-up for the committer, capacity 1
	closed bool
	exited chan struct{}

	commits, writes atomic.Uint64 // for CommitStats
}

// CommitStats reports how many group transactions committed and how many
// writes they carried: writes per commit is how well fsyncs are shared.
func (db *DB) CommitStats() (commits, writes uint64) {
	if db.commit == nil {
		return 0, 0
	}
	return db.commit.commits.Load(), db.commit.writes.Load()
}

// Submit queues fn for the next group commit and returns at once. fn may
// run more than once (its group is retried without a member that failed),
// so it must act only through tx and reset any result it records.
func (db *DB) Submit(fn func(*Tx) error) *Pending {
	return db.submit(&Pending{fn: fn, done: make(chan struct{})})
}

// SubmitFollowed is Submit for a writer that will write again soon after
// this write commits (a send worker records its SMTP reply one round trip
// after its intent is durable). Once fn commits, the next commit waits for
// that next write, up to maxHold, so that it shares that commit's fsync
// instead of waiting a whole commit for the following one: PostgreSQL's
// commit_delay with commit_siblings, except that only writers who said
// they are coming are waited for. Release the Hold as soon as the next
// write is submitted, or when there will be none.
func (db *DB) SubmitFollowed(fn func(*Tx) error) (*Pending, *Hold) {
	h := &Hold{c: db.commit}
	return db.submit(&Pending{fn: fn, done: make(chan struct{}), follow: h}), h
}

func (db *DB) submit(p *Pending) *Pending {
	c := db.commit
	if c == nil {
		p.finish(errors.New("store is read-only"))
		return p
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.finish(ErrClosed)
		return p
	}
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	c.wake()
	return p
}

func (c *committer) wake() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// Batch runs fn in a write transaction shared with whatever other writes
// are queued, and returns once it is committed: one fsync for many steps.
// fn may run more than once, so it must only act through tx.
func (db *DB) Batch(fn func(*Tx) error) error { return db.Submit(fn).Wait() }

func (db *DB) startCommitter() {
	db.commit = &committer{more: make(chan struct{}, 1), exited: make(chan struct{})}
	go db.runCommitter()
}

func (db *DB) runCommitter() {
	c := db.commit
	defer close(c.exited)
	var holdUntil time.Time // zero: not holding
	for {
		c.mu.Lock()
		queued, held, closed := len(c.queue), c.holds > 0, c.closed
		if queued > 0 && held && !closed {
			// Writes were announced: wait for them, briefly, so that they
			// share this transaction instead of waiting for the next.
			// (Wall-clock time: this is latency, not errpd's business time.)
			if holdUntil.IsZero() {
				holdUntil = time.Now().Add(maxHold)
			}
			if wait := time.Until(holdUntil); wait > 0 {
				c.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-c.more:
				case <-t.C:
				}
				t.Stop()
				continue
			}
		}
		holdUntil = time.Time{}
		n := min(queued, maxGroup)
		group := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		if len(group) > 0 {
			db.commitGroup(group)
			continue
		}
		if closed {
			return
		}
		<-c.more
	}
}

// Hold is a write announced by SubmitFollowed.
type Hold struct {
	c                *committer
	armed, withdrawn bool // guarded by c.mu
}

// arm counts the hold once the write it follows has committed.
func (h *Hold) arm() {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if !h.withdrawn && !h.armed {
		h.armed = true
		h.c.holds++
	}
}

// Release withdraws the announcement. It may be called more than once, and
// on a nil Hold.
func (h *Hold) Release() {
	if h == nil || h.c == nil {
		return
	}
	h.c.mu.Lock()
	if h.withdrawn {
		h.c.mu.Unlock()
		return
	}
	h.withdrawn = true
	if h.armed {
		h.c.holds--
	}
	h.c.mu.Unlock()
	h.c.wake()
}

// commitGroup runs a group in one transaction. A member that fails is
// taken out and answered with its error; the rest run again without it,
// so one bad write never takes its neighbours down with it.
func (db *DB) commitGroup(group []*Pending) {
	for len(group) > 0 {
		failed := -1
		var failErr error
		err := db.guard(func() error {
			return db.bolt.Update(func(btx *bolt.Tx) error {
				tx := writeTx(btx, db.now)
				for i, p := range group {
					// A member that meets a damaged page fails alone.
					if err := db.guard(func() error { return p.fn(tx) }); err != nil {
						failed, failErr = i, err
						return err
					}
				}
				if db.fault != nil {
					return db.fault()
				}
				return nil
			})
		})
		if failed >= 0 {
			group[failed].finish(failErr)
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		if err == nil {
			db.commit.commits.Add(1)
			db.commit.writes.Add(uint64(len(group)))
		}
		for _, p := range group {
			if err == nil && p.follow != nil {
				p.follow.arm() // before its writer wakes, so the next commit waits
			}
			p.finish(err) // nil, or the commit's own failure for everyone
		}
		return
	}
}

// stopCommitter lets queued writes finish, then ends the committer.
func (db *DB) stopCommitter() {
	c := db.commit
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wake()
	<-c.exited
}
