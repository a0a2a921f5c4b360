package pacing

import (
	"context"
	"io"
	"time"
)

// Reader paces reads from an io.Reader, for slow uploads: each Read reads at
// most what its Limiter books at once and returns once the Limiter has let
// it through, so n bytes at a rate take n/rate. The client is slowed in turn
// once the connection's buffers are full. A Reader is not safe for
// concurrent use.
type Reader struct {
	ctx      context.Context
	r        io.Reader
	lim      Limiter // nil until the first Read, for a Reader of a rate
	rate     float64
	deadline time.Time
	clock    Clock
	waited   time.Duration
}

// NewReader returns a Reader of r at bytesPerSecond, which stops pacing at
// deadline (none if zero) and stops waiting when ctx ends. Its rate starts
// with its first Read, with no credit.
func NewReader(ctx context.Context, r io.Reader, bytesPerSecond float64, deadline time.Time, clock Clock) *Reader {
	return &Reader{ctx: ctx, r: r, rate: bytesPerSecond, deadline: deadline, clock: clock}
}

// NewLimitedReader returns a Reader of r through lim, such as the way up of a
// client's Link.
func NewLimitedReader(ctx context.Context, r io.Reader, lim Limiter, deadline time.Time, clock Clock) *Reader {
	return &Reader{ctx: ctx, r: r, lim: lim, deadline: deadline, clock: clock}
}

// Read reads up to the Limiter's burst into p, and waits for the Limiter.
func (pr *Reader) Read(p []byte) (int, error) {
	if pr.lim == nil {
		b := NewBudget(pr.rate, RateChunk(pr.rate).N)
		b.Empty(pr.clock.Now())
		pr.lim = b
	}
	asked := pr.clock.Now()
	n, err := pr.r.Read(p[:min(len(p), pr.lim.Burst())])
	if n == 0 {
		return n, err
	}
	// Bytes the client took time to send left it when they came. (Not
	// the time between Reads, when they were on their way.)
	now := pr.clock.Now()
	resumeAt(pr.lim, now.Sub(asked), now)
	waited, serr := Await(pr.ctx, pr.clock, pr.lim, n, pr.deadline)
	pr.waited += waited
	if serr != nil {
		return n, serr
	}
	return n, err
}

// Waited is how long reads have waited for the rate.
func (pr *Reader) Waited() time.Duration { return pr.waited }
