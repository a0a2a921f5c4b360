package pacing

import (
	"cmp"
	"time"
)

// Schedule decides when each chunk may start to leave. The first chunk
// leaves at once; chunk k leaves at start + k × Interval, on an absolute grid,
// so that timer and write latencies do not add up over a long body.
//
// When a chunk is ready more than CatchUp after its slot (the next handler
// or the client was slower than the pace, or the Pacer woke late), the grid
// is re-anchored at that moment instead of letting later chunks burst out
// to catch up: a slow source is never delayed further, and never followed
// by a burst. Timer latencies up to CatchUp keep the grid, so they do not
// add up.
//
// The zero Schedule paces nothing: every chunk may leave at once.
type Schedule struct {
	Interval time.Duration
	// CatchUp is how late a chunk may be and keep the grid; 0 for the
	// package's CatchUp. A Pacer with jitter adds the most it moves a
	// chunk.
	CatchUp time.Duration

	next time.Time // the slot of the next chunk; zero before the first
}

// Reserve books the slot of a chunk that is ready at now and returns how long
// to wait until it may leave (zero if it may leave at once).
func (s *Schedule) Reserve(now time.Time) time.Duration {
	if s.Interval <= 0 {
		return 0
	}
	if s.next.IsZero() {
		s.next = now
	} else if now.Sub(s.next) > cmp.Or(s.CatchUp, CatchUp) {
		s.next = now
	}
	wait := s.next.Sub(now)
	s.next = s.next.Add(s.Interval)
	return max(wait, 0)
}

// lost moves the grid on by late: the chunk booked last left that much past
// its slot, so the next one leaves an interval after it did.
func (s *Schedule) lost(late time.Duration) {
	if !s.next.IsZero() {
		s.next = s.next.Add(late)
	}
}
