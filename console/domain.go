package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/evidence"
	"github.com/errpd/errpd/preview"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/resolve"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// pageSize is how many domains a search page lists; scanChunk how many
// domains one read transaction of a search reads.
const (
	pageSize  = 50
	scanChunk = 2000
)

type searchPage struct {
	Q       string
	Domains []store.Domain
	Next    string // the last name shown, when there are more
}

var errPageFull = errors.New("page full")

// search lists the stored domains whose A-label contains the query, a
// page at a time (after=the last name of the page before). An exact name
// goes straight to its page.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	needle := strings.ToLower(q)
	if a, err := idna.Lookup.ToASCII(needle); err == nil {
		needle = a
	}
	after := r.URL.Query().Get("after")
	p := searchPage{Q: q}
	exact := false
	if name, err := calendar.DomainName(q); err == nil && after == "" {
		err := s.o.DB.View(func(tx *store.Tx) (err error) {
			_, exact, err = tx.Domain(name)
			return err
		})
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		needle = name
	}
	// A chunk of domains per read transaction, until the page is full.
	for cursor := after; !exact && p.Next == ""; {
		n := 0
		err := s.o.DB.View(func(tx *store.Tx) (err error) {
			cursor, err = tx.DomainsAfter(cursor, scanChunk, func(d store.Domain) error {
				n++
				if !strings.Contains(d.Name, needle) {
					return nil
				}
				if len(p.Domains) == pageSize {
					p.Next = p.Domains[pageSize-1].Name
					return errPageFull
				}
				p.Domains = append(p.Domains, d)
				return nil
			})
			return err
		})
		if err != nil && !errors.Is(err, errPageFull) {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		if n < scanChunk {
			break
		}
	}
	if exact {
		http.Redirect(w, r, "/domains/"+url.PathEscape(needle), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "domains.html", "Domains", "domains", p)
}

type domainPage struct {
	Domain  store.Domain
	Unicode string
	Cycles  []cycleView
	Notices []scheduler.Notice
	Done    string // the action just taken
	Error   string // why the action was refused
	Now     time.Time
	CanZip  bool
}

type cycleView struct {
	Cycle store.Cycle
	Steps []stepView
}

type stepView struct {
	store.Step
	Actions []resolve.Action
}

// domain shows a domain's cycles, newest first, each with its timeline.
func (s *Server) domain(w http.ResponseWriter, r *http.Request) {
	name, err := calendar.DomainName(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	p := domainPage{Notices: []scheduler.Notice{scheduler.Reminder1, scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension},
		Done: r.URL.Query().Get("done"), Error: r.URL.Query().Get("error"), Now: s.o.Now().UTC(), CanZip: s.o.SigningKey != ""}
	found := false
	err = s.o.DB.View(func(tx *store.Tx) error {
		var err error
		if p.Domain, found, err = tx.Domain(name); err != nil || !found {
			return err
		}
		return tx.DomainSteps(name, func(st store.Step) error {
			if n := len(p.Cycles); n == 0 || p.Cycles[n-1].Cycle.Key != st.Cycle {
				c, _, err := tx.Cycle(st.Cycle)
				if err != nil {
					return err
				}
				p.Cycles = append(p.Cycles, cycleView{Cycle: c})
			}
			cv := &p.Cycles[len(p.Cycles)-1]
			cv.Steps = append(cv.Steps, stepView{Step: st, Actions: resolve.Actions(st)})
			return nil
		})
	})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if !found {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("domain %s is not in the store", name))
		return
	}
	for i, j := 0, len(p.Cycles)-1; i < j; i, j = i+1, j-1 {
		p.Cycles[i], p.Cycles[j] = p.Cycles[j], p.Cycles[i]
	}
	p.Unicode, _ = idna.ToUnicode(name)
	s.render(w, r, http.StatusOK, "domain.html", p.Unicode, "domains", p)
}

type previewPage struct {
	Domain, Notice string
	Text           string
	Error          string
}

// preview shows a notice of the domain as `errpd preview` prints it.
func (s *Server) preview(w http.ResponseWriter, r *http.Request) {
	name, err := calendar.DomainName(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	n, err := scheduler.ParseNotice(r.URL.Query().Get("notice"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	p := previewPage{Domain: name, Notice: string(n)}
	var buf bytes.Buffer
	err = s.o.DB.View(func(tx *store.Tx) error {
		in, err := preview.Input(tx, name, n)
		if err != nil {
			return err
		}
		m, err := s.o.Build(in)
		if err != nil {
			return err
		}
		return preview.Text(&buf, m)
	})
	p.Text = buf.String()
	if err != nil {
		p.Error = err.Error()
	}
	s.render(w, r, http.StatusOK, "preview.html", "Preview "+string(n)+" of "+name, "domains", p)
}

// eml downloads a step's message exactly as it was sent.
func (s *Server) eml(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("step")
	if _, _, _, err := store.ParseStepID(id); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	var raw []byte
	var ok, purged bool
	err := s.o.DB.View(func(tx *store.Tx) error {
		var err error
		raw, _, ok, err = tx.Message(id)
		purged = !ok && tx.Purged(id)
		return err
	})
	switch {
	case err != nil:
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	case purged:
		s.fail(w, r, http.StatusGone, fmt.Errorf("the message of %s was purged by retention", id))
		return
	case !ok:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no message stored for %s: it was never rendered", id))
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.ReplaceAll(id, "/", "_")+".eml"))
	w.Write(raw)
}

// evidence streams the domain's signed evidence zip (as errpd evidence).
func (s *Server) evidence(w http.ResponseWriter, r *http.Request) {
	name, err := calendar.DomainName(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if s.o.SigningKey == "" {
		s.fail(w, r, http.StatusNotFound, errors.New("audit.signing_key is not set (errpd keygen makes a key pair)"))
		return
	}
	key, err := evidence.LoadPrivateKey(s.o.SigningKey)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	longWrite(w)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "evidence-"+name+".zip"))
	if _, err := evidence.Write(w, s.o.DB, report.Filter{Domains: []string{name}}, key, s.o.Now()); err != nil {
		s.o.Log.Error("console: evidence download failed", "domain", name, "err", err)
	}
}

// resolve carries out an operator's action on a step, audited with the
// console user's name, and returns to the domain's page.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	id, note := r.PostFormValue("step"), strings.TrimSpace(r.PostFormValue("note"))
	domain, _, _, err := store.ParseStepID(id)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	back := "/domains/" + url.PathEscape(domain) + "?"
	action, err := resolve.ParseAction(r.PostFormValue("action"))
	if err == nil && note == "" {
		err = errors.New("say why in the note: it goes into the audit trail")
	}
	if err == nil {
		err = resolve.Settle(s.o.DB, id, action, note, userOf(r))
	}
	if err != nil {
		http.Redirect(w, r, back+url.Values{"error": {err.Error()}}.Encode(), http.StatusSeeOther)
		return
	}
	s.o.Log.Info("console: step resolved", "step", id, "action", string(action), "user", userOf(r))
	s.o.Wake()
	http.Redirect(w, r, back+url.Values{"done": {id + ": " + actionLabel(action) + " recorded"}}.Encode(), http.StatusSeeOther)
}
