package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// MinPollGap is the shortest time between two polls: Ascio (and registrar
// etiquette) asks for no more than one poll every five minutes.
const MinPollGap = 5 * time.Minute

// Poller drains Ascio's queue on a cron schedule, for the messages whose
// callback failed.
type Poller struct {
	Intake   *Intake
	Schedule cron.Schedule
}

// CheckSchedule refuses a schedule that would poll more often than every
// MinPollGap, looking at its next activations from from.
func CheckSchedule(s cron.Schedule, from time.Time) error {
	t := s.Next(from)
	for range 200 {
		next := s.Next(t)
		if next.IsZero() {
			return nil
		}
		if next.Sub(t) < MinPollGap {
			return fmt.Errorf("schedule polls %s after %s: more often than every %s", next.Sub(t), t.Format(time.RFC3339), MinPollGap)
		}
		t = next
	}
	return nil
}

// Run polls until ctx ends. A round still running when the next is due is
// skipped, never doubled.
func (p *Poller) Run(ctx context.Context) error {
	if err := CheckSchedule(p.Schedule, p.Intake.Now()); err != nil {
		return err
	}
	log := p.Intake.Log
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	c.Schedule(p.Schedule, cron.FuncJob(func() {
		n, err := p.Intake.Drain(ctx)
		if err != nil {
			log.Error("ascio poll", "taken", n, "err", err)
			return
		}
		if n > 0 {
			log.Info("ascio poll", "taken", n)
		}
	}))
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done() // waits for a round in progress
	return nil
}
