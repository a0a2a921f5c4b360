package pacing

import (
	"context"
	"io"
	"time"
)

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
