package ascio_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/internal/peertext"
)

// ops calls each operation of the client with arguments that the seeded
// stand-in answers with success when it answers normally.
func ops(c *ascio.Client) map[string]func(context.Context) error {
	msg := ascio.Message{Body: "b", Created: time.Date(2026, 1, 30, 9, 0, 0, 0, time.UTC), Type: ascio.ExpiryReminder1}
	return map[string]func(context.Context) error{
		ascioteststand.OpUploadMessage: func(ctx context.Context) error {
			_, err := c.UploadMessage(ctx, "O1", msg)
			return err
		},
		ascioteststand.OpGetMessages: func(ctx context.Context) error {
			_, err := c.GetMessages(ctx, "O1")
			return err
		},
		ascioteststand.OpPollQueue: func(ctx context.Context) error {
			_, err := c.PollQueue(ctx, ascio.MessageToPartner)
			return err
		},
		ascioteststand.OpGetQueueMessage: func(ctx context.Context) error {
			_, err := c.GetQueueMessage(ctx, 7)
			return err
		},
		ascioteststand.OpAckQueueMessage: func(ctx context.Context) error {
			return c.AckQueueMessage(ctx, 7)
		},
		ascioteststand.OpGetOrder: func(ctx context.Context) error {
			_, err := c.GetOrder(ctx, "O1")
			return err
		},
		ascioteststand.OpGetDomain: func(ctx context.Context) error {
			_, err := c.GetDomain(ctx, "DOM-1")
			return err
		},
		ascioteststand.OpGetDomains: func(ctx context.Context) error {
			_, err := c.GetDomainByName(ctx, "example.com")
			return err
		},
	}
}

func seeded(t *testing.T) (*ascioteststand.Server, *ascio.Client) {
	t.Helper()
	s, c := setup(t)
	s.AddMessage(ascio.QueueMessage{ID: 7, ObjectHandle: "DOM-1", ObjectName: "example.com", OrderID: "O1", OrderType: "AutoRenew", OrderStatus: "Received"})
	s.AddOrder(ascio.Order{ID: "O1", Type: "AutoRenew", Status: "Received", DomainName: "example.com", DomainHandle: "DOM-1"})
	s.AddDomain(ascio.Domain{Name: "example.com", Handle: "DOM-1", Expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)})
	return s, c
}

// Every operation answers success against the seeded stand-in, so that
// the hostile cases below fail for the hostile answer and nothing else.
func TestOpsSucceedWhenAnsweredNormally(t *testing.T) {
	t.Parallel()
	_, c := seeded(t)
	calls := ops(c)
	// The acknowledgement goes last: it takes message 7 off the queue, and
	// GetQueueMessage of it would then be a 404 (map order is random).
	names := slices.Sorted(maps.Keys(calls))
	names = append(slices.DeleteFunc(names, func(op string) bool { return op == ascioteststand.OpAckQueueMessage }), ascioteststand.OpAckQueueMessage)
	for _, op := range names {
		if err := calls[op](context.Background()); err != nil {
			t.Errorf("%s: %v", op, err)
		}
	}
}

// An answer that is not a SOAP answer, or a success answer without the
// element the call is for, is a temporary protocol error: never a
// success, never "not found", never permanent.
func TestAnswersThatAreNotAnswersAreTemporary(t *testing.T) {
	t.Parallel()
	for _, a := range []ascioteststand.Answer{ascioteststand.Truncated, ascioteststand.HTML, ascioteststand.Empty,
		ascioteststand.WrongNamespace, ascioteststand.Missing} {
		for _, op := range []string{ascioteststand.OpUploadMessage, ascioteststand.OpGetMessages, ascioteststand.OpPollQueue,
			ascioteststand.OpGetQueueMessage, ascioteststand.OpAckQueueMessage, ascioteststand.OpGetOrder, ascioteststand.OpGetDomain,
			ascioteststand.OpGetDomains} {
			t.Run(a.String()+"/"+op, func(t *testing.T) {
				t.Parallel()
				s, c := seeded(t)
				s.Script(op, a)
				err := ops(c)[op](context.Background())
				if err == nil {
					t.Fatal("accepted")
				}
				if !ascio.IsTemporary(err) || ascio.IsNotFound(err) || !errors.Is(err, ascio.ErrProtocol) {
					t.Errorf("%v: temporary %v, not found %v, protocol error %v; want a temporary protocol error",
						err, ascio.IsTemporary(err), ascio.IsNotFound(err), errors.Is(err, ascio.ErrProtocol))
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("error holds the password: %v", err)
				}
			})
		}
	}
}

// A 307 would make net/http send the body again, password and all, to
// whatever host the Location names. No redirect is followed, whether or
// not the caller brought its own http.Client.
func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	for name, hc := range map[string]*http.Client{"default client": nil, "own client": {Timeout: 10 * time.Second}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var reached atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
			}))
			defer elsewhere.Close()
			s, c := setup(t)
			c.HTTP = hc
			s.SetRedirect(elsewhere.URL + "/collect")
			s.Script(ascioteststand.OpUploadMessage, ascioteststand.Redirect)
			_, err := c.UploadMessage(context.Background(), "O1", ascio.Message{Created: time.Now(), Type: ascio.ExpiryReminder1})
			if n := reached.Load(); n != 0 {
				t.Errorf("the redirect was followed: the other host got %d requests", n)
			}
			if !ascio.IsTemporary(err) || !errors.Is(err, ascio.ErrRedirect) {
				t.Errorf("err = %v, want a temporary redirect error", err)
			}
			if err != nil && !strings.Contains(err.Error(), elsewhere.URL+"/collect") {
				t.Errorf("error %q does not name the Location", err)
			}
			if len(s.Uploads()) != 0 {
				t.Errorf("a redirect stored an upload")
			}
		})
	}
}

// A 3 MB faultstring, ResultMessage or Errors list is cut at the source:
// the error, which the uploader stores and the log prints, stays small.
func TestHugePeerTextIsCapped(t *testing.T) {
	t.Parallel()
	for _, a := range []ascioteststand.Answer{ascioteststand.HugeFault, ascioteststand.HugeResult} {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			s, c := setup(t)
			s.Script(ascioteststand.OpUploadMessage, a)
			_, err := c.UploadMessage(context.Background(), "O1", ascio.Message{Created: time.Now(), Type: ascio.ExpiryReminder1})
			var e *ascio.Error
			if !errors.As(err, &e) || !e.Temporary {
				t.Fatalf("err = %v, want a temporary *ascio.Error", err)
			}
			const bound = 3 * peertext.Max // all of it, not each piece
			if n := len(err.Error()); n > bound {
				t.Errorf("error text is %d bytes, want at most %d", n, bound)
			}
			if n := len(e.Fault); n > peertext.Max+64 {
				t.Errorf("fault is %d bytes", n)
			}
			if n := len(e.Result.Message); n > peertext.Max+64 {
				t.Errorf("ResultMessage is %d bytes", n)
			}
			if n := len(strings.Join(e.Result.Errors, "")); n > peertext.Max+2*64 {
				t.Errorf("Errors are %d bytes together (%d entries)", n, len(e.Result.Errors))
			}
			if !strings.Contains(err.Error(), "[cut:") {
				t.Errorf("error does not say that it was cut: %.200s", err)
			}
		})
	}
}

// An endpoint that streams without end is read up to a bound, and the
// error names it.
func TestEndlessAnswerIsBounded(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	s.Script(ascioteststand.OpGetOrder, ascioteststand.Endless)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.GetOrder(ctx, "O1")
	if !ascio.IsTemporary(err) || !errors.Is(err, ascio.ErrTooLarge) || !strings.Contains(err.Error(), "16 MiB") {
		t.Errorf("err = %v, want a temporary error naming the 16 MiB cap", err)
	}
}
