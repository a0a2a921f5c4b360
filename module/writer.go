package pace

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// pacedWriter is the http.ResponseWriter the next handler writes to. When
// the final response head is written it decides whether the response is
// paced (match), holds the head for the latency, and if the body is paced
// hands every byte to a pacing.Pacer, which writes and flushes chunk by
// chunk to the ResponseWriter below. On a network, the head and the body go
// down the client's link (link), and reset may cut the body (cut).
type pacedWriter struct {
	http.ResponseWriter
	req      *http.Request
	h        *Handler
	opts     *options
	deadline time.Time
	below    *http.ResponseController // flushes the writer below, through its wrappers

	wroteHeader bool
	err         error                // the client left while the head was held
	pacer       *pacing.Pacer        // nil while the body is not paced
	shared      *pacing.SharedBudget // the share budget the pacer draws from
	link        *downLink            // on a network: the way down the client's link; else nil
	cut         *cut                 // reset's, if it cuts this response; else nil
	started     time.Time            // when the body's pacing started
	clock       pacing.RealClock
}

func newPacedWriter(w http.ResponseWriter, r *http.Request, h *Handler, o *options, deadline time.Time) *pacedWriter {
	return &pacedWriter{
		ResponseWriter: w,
		req:            r,
		h:              h,
		opts:           o,
		deadline:       deadline,
		below:          http.NewResponseController(w),
	}
}

// WriteHeader decides, for a final response, whether it is paced; holds the
// head for the latency (and on a network until it has come down the link);
// sets up pacing for a body; and passes the head on. Informational (1xx)
// heads pass straight through.
func (pw *pacedWriter) WriteHeader(status int) {
	if pw.wroteHeader || status < 200 {
		pw.ResponseWriter.WriteHeader(status)
		return
	}
	pw.wroteHeader = true
	if m := pw.h.Match; m != nil && !m.Match(status, pw.Header()) {
		pw.ResponseWriter.WriteHeader(status)
		return
	}
	paced := pw.opts.paced && pw.req.Method != http.MethodHead &&
		status != http.StatusNoContent && status != http.StatusNotModified
	if pw.link != nil {
		if pw.err = pw.link.holdHead(pw, paced); pw.err != nil {
			return
		}
	}
	if pw.opts.latency > 0 {
		if pw.err = pw.holdHead(); pw.err != nil {
			return
		}
	}
	if paced {
		pw.startPacing()
	}
	pw.ResponseWriter.WriteHeader(status)
	if paced && !pw.link.rides() {
		// The head goes out now, before the first chunk's turn, so the
		// client has the status and headers at once. Written here rather
		// than from inside the pacer, net/http's writeHeader (a 2.8 KiB
		// frame) runs a few frames higher up the handler's stack, which
		// keeps it in Go's 16 KiB stack class in a plain site instead of
		// 32 KiB, for every stream (BENCHMARKS.md). A failed flush is the
		// client gone, which the first write reports.
		pw.flushBelow()
	}
}

// holdHead waits for the latency, or until the deadline or the client goes.
func (pw *pacedWriter) holdHead() error {
	d := pw.opts.latency
	if !pw.deadline.IsZero() {
		d = min(d, time.Until(pw.deadline))
	}
	return pw.clock.Sleep(pw.req.Context(), d)
}

func (pw *pacedWriter) startPacing() {
	o := pw.opts
	h := pw.Header()
	if !o.untouched {
		dest, ct := pw.req.Header.Get("Sec-Fetch-Dest"), h.Get("Content-Type")
		if set, rewrite := o.contentTypeFor(ct, dest); rewrite {
			h.Set("Content-Type", set)
			ct = set
		}
		if nosniffKeeps(dest, ct) {
			h.Set("X-Content-Type-Options", "nosniff")
		}
		h.Set("X-Accel-Buffering", "no")
	}
	pw.started = time.Now()
	plan := pacing.Plan{
		Chunk:    o.chunk,
		Interval: o.interval,
		Rate:     o.rate,
		Jitter:   o.jitter,
		Rand:     pw.h.random,
		After:    o.after,
		Deadline: pw.deadline,
	}
	switch {
	case pw.link != nil:
		plan.Shared = pw.link.x.Down
	case o.share != "" && o.rate > 0 && pw.h.budgets != nil:
		pw.shared = pw.h.budgets.Acquire(o.share, o.rate, pw.started)
		plan.Shared = pw.shared.Value
	}
	pw.pacer = pacing.NewPacer(pw.req.Context(), pw.ResponseWriter, pw.flushBelow, plan, &pw.clock)
	paceMetrics.inFlight.Inc()
	if pw.cut != nil && !pw.cut.arm(pw) {
		pw.cut = nil
	}
}

// head writes the head the next handler left implicit (200), as net/http
// would, and returns the error of a client that left while it was held.
func (pw *pacedWriter) head() error {
	if !pw.wroteHeader {
		pw.WriteHeader(http.StatusOK)
	}
	return pw.err
}

// Write paces p, or passes it through if the response is not paced.
func (pw *pacedWriter) Write(p []byte) (int, error) {
	if err := pw.head(); err != nil {
		return 0, err
	}
	switch {
	case pw.pacer == nil:
		return pw.ResponseWriter.Write(p)
	case pw.cut != nil:
		return pw.cut.write(pw, p)
	}
	return pw.pacer.Write(p)
}

// ReadFrom paces what it reads from r. Handlers such as file_server copy a
// body with io.Copy, which prefers the writer's ReadFrom; the ReadFrom of
// the writer below (sendfile) would go around pacing, so a paced response
// reads r about a chunk at a time instead.
func (pw *pacedWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := pw.head(); err != nil {
		return 0, err
	}
	switch {
	case pw.pacer == nil:
		if rf, ok := pw.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(r)
		}
		return io.Copy(pw.ResponseWriter, r)
	case pw.cut != nil:
		return pw.cut.readFrom(pw, r)
	}
	return pw.pacer.ReadFrom(r)
}

// FlushError flushes what the next handler has written. On a paced response
// that is what the current chunk has written so far (never part of a
// character); a flush never lets a chunk out before its time.
func (pw *pacedWriter) FlushError() error {
	if err := pw.head(); err != nil {
		return err
	}
	if pw.cut.isDone() {
		return errCut
	}
	if pw.link.rides() {
		if err := pw.link.sendHead(pw); err != nil {
			return err
		}
	}
	if pw.pacer != nil {
		return pw.pacer.Flush()
	}
	return pw.flushBelow()
}

func (pw *pacedWriter) flushBelow() error {
	err := pw.below.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil // nothing below buffers, so there is nothing to push out
	}
	return err
}

// Unwrap returns the writer below, for http.ResponseController (deadlines,
// Hijack for protocol upgrades).
func (pw *pacedWriter) Unwrap() http.ResponseWriter {
	return pw.ResponseWriter
}

// close ends a response that the next handler finished: one that wrote
// nothing gets its head now (so the latency applies to it too), and a paced
// body's last chunk is flushed.
func (pw *pacedWriter) close() error {
	if err := pw.head(); err != nil {
		return err
	}
	if pw.pacer == nil {
		return nil
	}
	if pw.cut != nil && !pw.cut.done { // the body ended before its cut: cut it at its end
		pw.cut.now(pw)
	}
	if pw.link.rides() {
		if err := pw.link.sendHead(pw); err != nil {
			return err
		}
	}
	return pw.pacer.Close()
}

// release frees what the writer holds however the handler ended, and
// accounts for the paced body in the metrics and the debug log; err is how
// the handler ended.
func (pw *pacedWriter) release(err error) {
	pw.clock.Stop()
	if pw.pacer == nil {
		return
	}
	now := time.Now()
	if pw.shared != nil {
		pw.h.budgets.Release(pw.shared, now)
	}
	stats := pw.pacer.Stats()
	paceMetrics.inFlight.Dec()
	paceMetrics.responses.Inc()
	paceMetrics.bytes.Add(float64(stats.Bytes))
	paceMetrics.waited.Add(stats.Waited.Seconds())
	if stats.LateChunks > 0 {
		paceMetrics.late.Add(stats.Late.Seconds())
		paceMetrics.lateWaits.Add(float64(stats.LateChunks))
	}
	if c := pw.h.logger.Check(zapcore.DebugLevel, "paced response"); c != nil {
		elapsed := now.Sub(pw.started)
		c.Write(
			zap.Int64("bytes", stats.Bytes),
			zap.Int64("chunks", stats.Chunks),
			zap.Duration("elapsed", elapsed),
			zap.String("rate", effectiveRate(stats.Bytes, elapsed)),
			zap.Duration("waited", stats.Waited),
			zap.Duration("late", stats.Late),
			zap.Int64("late_waits", stats.LateChunks),
			zap.String("ended", pw.ending(err, stats)),
		)
	}
}

// ending says how the paced body ended, for the log.
func (pw *pacedWriter) ending(err error, stats pacing.Stats) string {
	switch {
	case pw.cut.isDone():
		return "cut by reset after " + strconv.FormatInt(stats.Bytes, 10) + " bytes"
	case pw.req.Context().Err() != nil:
		return "client gone"
	case err != nil:
		return "error: " + err.Error()
	case stats.Deadline:
		return "max_duration reached, rest sent unpaced"
	}
	return "complete"
}

// effectiveRate is bytes over elapsed, in bytes per second.
func effectiveRate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(bytes)/elapsed.Seconds(), 'f', 0, 64) + " B/s"
}

// Interface guards
var (
	_ http.ResponseWriter             = (*pacedWriter)(nil)
	_ io.ReaderFrom                   = (*pacedWriter)(nil)
	_ interface{ FlushError() error } = (*pacedWriter)(nil)
)
