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

// Writer paces writes to an io.Writer through a Limiter, such as the way
// down of a client's Link, for a source that writes when it has something
// (an upgraded connection's): each Write returns once its bytes have gone
// through, in pieces of at most the Limiter's burst, and the time between
// two Writes is the source's: bytes written after a pause leave no sooner.
// A Writer is not safe for concurrent use.
type Writer struct {
	ctx     context.Context
	w       io.Writer
	lim     Limiter
	clock   Clock
	lastOut time.Time
}

// NewLimitedWriter returns a Writer to w through lim, which stops waiting
// when ctx ends. The source is idle from now until its first Write.
func NewLimitedWriter(ctx context.Context, w io.Writer, lim Limiter, clock Clock) *Writer {
	return &Writer{ctx: ctx, w: w, lim: lim, clock: clock, lastOut: clock.Now()}
}

// Write writes p, each piece once the Limiter has let it through.
func (pw *Writer) Write(p []byte) (int, error) {
	now := pw.clock.Now()
	resumeAt(pw.lim, now.Sub(pw.lastOut), now)
	defer func() { pw.lastOut = pw.clock.Now() }()
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), pw.lim.Burst())]
		if _, err := Await(pw.ctx, pw.clock, pw.lim, len(piece), time.Time{}); err != nil {
			return written, err
		}
		n, err := pw.w.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(piece):]
	}
	return written, nil
}

// Waited is how long reads have waited for the rate.
func (pr *Reader) Waited() time.Duration { return pr.waited }

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
	}
	return waited, nil
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
