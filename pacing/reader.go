package pacing

import (
	"context"
	"io"
	"time"
)

// Reader paces reads from an io.Reader to a rate, for slow uploads: each
// Read reads at most the budget's burst and returns once a link of that rate
// would have carried what it read, so n bytes take n/rate. The client is
// slowed in turn once the connection's buffers are full. A Reader is not
// safe for concurrent use.
type Reader struct {
	ctx      context.Context
	r        io.Reader
	rate     float64
	deadline time.Time
	clock    Clock
	budget   *Budget // made, empty, at the first Read
	waited   time.Duration
}

// NewReader returns a Reader of r at bytesPerSecond that stops pacing at
// deadline (none if zero) and stops waiting when ctx ends.
func NewReader(ctx context.Context, r io.Reader, bytesPerSecond float64, deadline time.Time, clock Clock) *Reader {
	return &Reader{ctx: ctx, r: r, rate: bytesPerSecond, deadline: deadline, clock: clock}
}

// Read reads up to the budget's burst into p, and waits for the budget.
func (pr *Reader) Read(p []byte) (int, error) {
	if pr.budget == nil {
		pr.budget = NewBudget(pr.rate, RateChunk(pr.rate).N)
		pr.budget.Empty(pr.clock.Now())
	}
	n, err := pr.r.Read(p[:min(len(p), pr.budget.Burst())])
	if n == 0 {
		return n, err
	}
	now := pr.clock.Now()
	d := pr.budget.Reserve(now, n)
	if !pr.deadline.IsZero() {
		d = min(d, pr.deadline.Sub(now))
	}
	if d > 0 {
		pr.waited += d
		if serr := pr.clock.Sleep(pr.ctx, d); serr != nil {
			return n, serr
		}
	}
	return n, err
}

// Waited is how long reads have waited for the rate.
func (pr *Reader) Waited() time.Duration { return pr.waited }
