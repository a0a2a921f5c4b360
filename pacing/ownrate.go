package pacing

import (
	"math"
	"time"
)

// CatchUp is how late a Pacer may run and have its rate or schedule catch
// up, so that timer and write latencies do not add up over a long body.
// Later than that, the lateness is lost, as on a link, which does not carry
// more afterwards because its sender was late, and the Pacer counts it
// (Stats.Late): the stream goes on at its rate from where it is. So a rate
// is a ceiling: over any span longer than a chunk a stream carries at most
// the rate's bytes of that span and CatchUp more, and from its first byte
// no more than its rate.
//
// It is 2 ms because Go's timers wake up to a millisecond late on an idle
// Linux machine (the network poller waits in whole milliseconds): with
// 1 ms, one wake-up in five was lost, and a lone stream ran 0.4% slow.
const CatchUp = 2 * time.Millisecond

// An ownRate is a stream's own rate (Plan.Rate), which it has to itself:
// a link that carries the one stream, so that each piece leaves when a link
// of that rate would have carried its last byte, and n bytes take n/rate.
//
// The link keeps its own time, the moment it has carried everything booked
// so far. That time moves on with the pieces it carries and with the time
// the source took to hand them over (idle). A Pacer that runs late by at
// most CatchUp sends its next piece that much early, so that timer
// latencies do not add up; one later than that, on a loaded machine, has
// lost the time, and the link carries on from now: the rate is a ceiling.
// A source that pauses earns no credit, unlike a token bucket's, and is
// never followed by a burst.
type ownRate struct {
	rate    float64
	burst   int
	catchUp time.Duration // CatchUp, and the jitter the Pacer may add
	// The link has carried all that was booked at since + booked/rate,
	// kept apart so that many small pieces add up without rounding.
	since  time.Time
	booked float64
}

// newOwnRate returns the rate of bytesPerSecond, idle at now, that carries at
// most burst bytes a piece and lets a late Pacer catch up by catchUp.
func newOwnRate(bytesPerSecond float64, burst int, catchUp time.Duration, now time.Time) *ownRate {
	return &ownRate{rate: bytesPerSecond, burst: max(burst, 1), catchUp: catchUp, since: now}
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
	if l.free().Before(now.Add(-l.catchUp)) {
		l.since, l.booked = now, 0 // too late to catch up: lost
	}
	l.booked += float64(n)
	return max(l.free().Sub(now).Round(time.Microsecond), 0)
}
