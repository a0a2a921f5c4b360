package pacing

import (
	"math"
	"time"
)

// maxCatchUp bounds how far a stream's own rate lets it catch up after the
// Pacer itself ran late.
const maxCatchUp = time.Second

// An ownRate is a stream's own rate (Plan.Rate), which it has to itself:
// a link that carries the one stream, so that each piece leaves when a link
// of that rate would have carried its last byte, and n bytes take n/rate.
//
// The link keeps its own time, the moment it has carried everything booked
// so far. That time moves on with the pieces it carries and with the time
// the source took to hand them over (idle), but not with the time the Pacer
// spent oversleeping or writing: a Pacer that runs late, on a loaded
// machine, sends its next pieces early until it has caught up, by at most
// maxCatchUp, so the long-run rate stays exact. A source that pauses earns
// no credit, unlike a token bucket's, and is never followed by a burst.
type ownRate struct {
	rate  float64
	burst int
	// The link has carried all that was booked at since + booked/rate,
	// kept apart so that many small pieces add up without rounding.
	since  time.Time
	booked float64
}

// newOwnRate returns the rate of bytesPerSecond, idle at now, that carries at
// most burst bytes a piece.
func newOwnRate(bytesPerSecond float64, burst int, now time.Time) *ownRate {
	return &ownRate{rate: bytesPerSecond, burst: max(burst, 1), since: now}
}

func (l *ownRate) Burst() int    { return l.burst }
func (l *ownRate) Rate() float64 { return l.rate }
func (l *ownRate) idle(d time.Duration, _ time.Time) {
	if d > 0 {
		l.since = l.since.Add(d)
	}
}

// free is when the link has carried all that was booked.
func (l *ownRate) free() time.Time {
	return l.since.Add(time.Duration(math.Round(l.booked / l.rate * float64(time.Second))))
}

// Reserve books n bytes that are ready at now and returns how long to wait
// until the link has carried them.
func (l *ownRate) Reserve(now time.Time, n int) time.Duration {
	if behind := now.Add(-maxCatchUp); l.free().Before(behind) {
		l.since, l.booked = behind, 0
	}
	l.booked += float64(n)
	return max(l.free().Sub(now).Round(time.Microsecond), 0)
}
