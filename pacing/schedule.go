package pacing

import "time"

// Schedule decides when each chunk may start to leave. The first chunk
// leaves at once; chunk k leaves at start + k × Interval, on an absolute grid,
// so that timer and write latencies do not add up over a long body.
//
// When a chunk is ready more than one interval after its slot (the next
// handler or the client was slower than the pace), the grid is re-anchored
// at that moment instead of letting later chunks burst out to catch up: a
// slow source is never delayed further, and never followed by a burst.
//
// The zero Schedule paces nothing: every chunk may leave at once.
type Schedule struct {
	Interval time.Duration

	next time.Time // the slot of the next chunk; zero before the first
}

// Reserve books the slot of a chunk that is ready at now and returns how long
// to wait until it may leave (zero if it may leave at once).
func (s *Schedule) Reserve(now time.Time) time.Duration {
	if s.Interval <= 0 {
		return 0
	}
	if s.next.IsZero() || now.Sub(s.next) > s.Interval {
		s.next = now
	}
	wait := s.next.Sub(now)
	s.next = s.next.Add(s.Interval)
	return max(wait, 0)
}
