package pacing

import (
	"context"
	"time"
)

// Clock tells the time and waits; a Pacer takes it so that tests can run
// its timing exactly and instantly with a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or returns the context's error as soon as ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock. It keeps one timer for all its sleeps, so it
// is meant to be owned by one stream and is not safe for concurrent use.
type RealClock struct {
	timer *time.Timer
}

// Now returns time.Now().
func (*RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx is done, whichever comes first.
func (c *RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d) // since Go 1.23 Reset needs no drain of the channel
	}
	select {
	case <-c.timer.C:
		return nil
	case <-ctx.Done():
		c.timer.Stop()
		return context.Cause(ctx)
	}
}

// Stop releases the timer.
func (c *RealClock) Stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleepBounded sleeps d from now, but not past deadline (none if zero): it
// returns how long it slept, and whether the deadline cut it short.
func sleepBounded(ctx context.Context, clock Clock, d time.Duration, now, deadline time.Time) (time.Duration, bool, error) {
	past := false
	if !deadline.IsZero() {
		if left := deadline.Sub(now); d >= left {
			d, past = max(left, 0), true
		}
	}
	if d <= 0 {
		return 0, past, ctx.Err()
	}
	return d, past, clock.Sleep(ctx, d)
}
