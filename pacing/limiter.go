package pacing

import (
	"context"
	"time"
)

// A Limiter lets bytes leave at a rate: a Budget shared with other streams,
// the Stream of a client's Link, or a stream's own link.
type Limiter interface {
	// Reserve books n bytes (at most Burst) at now and returns how long to
	// wait before they leave.
	Reserve(now time.Time, n int) time.Duration
	// Burst is the most bytes one Reserve may book.
	Burst() int
	// Rate is the limit in bytes per second; 0 for none.
	Rate() float64
}

// An idler is a Limiter that is a link: told how long the source took to
// hand over the next bytes, until now, which it was idle for, so that a
// source that pauses earns no credit while a Pacer that runs late catches
// up.
type idler interface {
	idle(d time.Duration, now time.Time)
}

// A settler is a Limiter whose bytes may arrive later than Reserve said: a
// link with a queue, in which a piece sent earlier but booked later goes
// first. settle says how long to wait still, at now, for the bytes of the
// last Reserve.
type settler interface {
	settle(now time.Time) time.Duration
}

// An aheader is a Limiter that is a link that loses packets: told, before
// a piece is booked, how many bytes the source has handed over after it, so
// that it knows whether a lost packet is the last in flight.
type aheader interface {
	ahead(n int)
}

// An opener is a Limiter that may not take bytes yet (a connection's
// congestion window): Open says how long to wait until n bytes may be
// booked.
type opener interface {
	Open(now time.Time, n int) time.Duration
}

// A resumer is a Limiter that is a client's link, told when a source that
// keeps its own time had nothing for a while and handed over more bytes.
type resumer interface {
	resume(d time.Duration, now time.Time)
}

func resumeAt(lim Limiter, d time.Duration, now time.Time) {
	if r, ok := lim.(resumer); ok {
		r.resume(d, now)
	}
}

// Await waits until lim lets n bytes through, in pieces of at most its
// Burst, and returns how long it waited. It stops waiting at deadline (none
// if zero), and fails as soon as ctx ends.
func Await(ctx context.Context, clock Clock, lim Limiter, n int, deadline time.Time) (time.Duration, error) {
	var waited time.Duration
	for n > 0 {
		piece := min(n, lim.Burst())
		n -= piece
		if a, ok := lim.(aheader); ok {
			a.ahead(n)
		}
		now := clock.Now()
		if o, ok := lim.(opener); ok {
			for d := o.Open(now, piece); d > 0; d = o.Open(now, piece) {
				slept, past, err := sleepBounded(ctx, clock, d, now, deadline)
				if waited += slept; past || err != nil {
					return waited, err
				}
				now = clock.Now()
			}
		}
		slept, past, err := sleepBounded(ctx, clock, lim.Reserve(now, piece), now, deadline)
		if waited += slept; past || err != nil {
			return waited, err
		}
		if st, ok := lim.(settler); ok {
			slept, past, err := settle(ctx, clock, st, deadline)
			if waited += slept; past || err != nil {
				return waited, err
			}
		}
	}
	return waited, nil
}

// settle sleeps until st's last bytes have arrived, however often a piece
// sent before them pushes them on, but not past deadline (none if zero).
func settle(ctx context.Context, clock Clock, st settler, deadline time.Time) (time.Duration, bool, error) {
	var waited time.Duration
	for {
		now := clock.Now()
		d := st.settle(now)
		if d <= 0 {
			return waited, false, nil
		}
		slept, past, err := sleepBounded(ctx, clock, d, now, deadline)
		if waited += slept; past || err != nil {
			return waited, past, err
		}
	}
}
