package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/errpd/errpd/store"
)

// TestGroupCommit: writes queued while a transaction commits share the next
// one, in the order they were submitted.
func TestGroupCommit(t *testing.T) {
	b := setup(t)
	release := make(chan struct{})
	var mu sync.Mutex
	txs := map[*store.Tx]bool{}
	seen := func(tx *store.Tx) {
		mu.Lock()
		txs[tx] = true
		mu.Unlock()
	}
	// The first write holds the committer, so that the next ones queue.
	first := b.db.Submit(func(tx *store.Tx) error {
		<-release
		return tx.MarkMessage("first")
	})
	var ps []*store.Pending
	for i := range 100 {
		ps = append(ps, b.db.Submit(func(tx *store.Tx) error {
			seen(tx)
			return tx.MarkMessage(fmt.Sprint("m", i))
		}))
	}
	close(release)
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	// Waiting on the last write is enough: the ones before it are done.
	if err := ps[len(ps)-1].Wait(); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		select {
		case <-p.Done():
		default:
			t.Fatalf("write %d is not done although the last one is", i)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if len(txs) > 2 {
		t.Errorf("100 queued writes took %d transactions, want them grouped into at most 2", len(txs))
	}
	b.db.View(func(tx *store.Tx) error {
		for i := range 100 {
			if !tx.SeenMessage(fmt.Sprint("m", i)) {
				t.Errorf("write m%d is missing", i)
			}
		}
		return nil
	})
}

// TestGroupCommitFailure: a member that fails gets its error and leaves
// nothing behind; the others in its group still commit.
func TestGroupCommitFailure(t *testing.T) {
	b := setup(t)
	release := make(chan struct{})
	hold := b.db.Submit(func(*store.Tx) error { <-release; return nil })
	boom := errors.New("boom")
	ok1 := b.db.Submit(func(tx *store.Tx) error { return tx.MarkMessage("ok1") })
	bad := b.db.Submit(func(tx *store.Tx) error {
		if err := tx.MarkMessage("bad"); err != nil {
			return err
		}
		return boom
	})
	ok2 := b.db.Submit(func(tx *store.Tx) error { return tx.MarkMessage("ok2") })
	close(release)
	for _, p := range []*store.Pending{hold, ok1, ok2} {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := bad.Wait(); !errors.Is(err, boom) {
		t.Fatalf("failing write: got %v, want boom", err)
	}
	b.db.View(func(tx *store.Tx) error {
		if !tx.SeenMessage("ok1") || !tx.SeenMessage("ok2") {
			t.Error("the failing write took its neighbours down with it")
		}
		if tx.SeenMessage("bad") {
			t.Error("the failing write was committed")
		}
		return nil
	})
}

// TestCloseCommitsQueued: Close commits what is queued; a write after
// Close fails with ErrClosed and is not lost silently.
func TestCloseCommitsQueued(t *testing.T) {
	b := setup(t)
	release := make(chan struct{})
	hold := b.db.Submit(func(*store.Tx) error { <-release; return nil })
	queued := b.db.Submit(func(tx *store.Tx) error { return tx.MarkMessage("queued") })
	closed := make(chan error)
	go func() { closed <- b.db.Close() }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := hold.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := queued.Wait(); err != nil {
		t.Fatalf("queued write: %v", err)
	}
	if err := b.db.Batch(func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after Close: got %v, want ErrClosed", err)
	}
	db := b.open(t)
	defer db.Close()
	db.View(func(tx *store.Tx) error {
		if !tx.SeenMessage("queued") {
			t.Error("the write queued at Close was lost")
		}
		return nil
	})
}
