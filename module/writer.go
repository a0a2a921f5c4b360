package pace

import (
	"errors"
	"io"
	"net/http"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// pacedWriter is the http.ResponseWriter the next handler writes to. It
// decides when the response head goes out whether the body is paced, and if
// so hands every byte to a pacing.Pacer, which writes and flushes chunk by
// chunk to the ResponseWriter below.
type pacedWriter struct {
	http.ResponseWriter
	req   *http.Request
	cfg   *config
	below *http.ResponseController // flushes the writer below, through its wrappers

	wroteHeader bool
	pacer       *pacing.Pacer // nil while the response is not paced
	clock       pacing.RealClock
}

func newPacedWriter(w http.ResponseWriter, r *http.Request, cfg *config) *pacedWriter {
	return &pacedWriter{
		ResponseWriter: w,
		req:            r,
		cfg:            cfg,
		below:          http.NewResponseController(w),
	}
}

// WriteHeader sets up pacing for a final response that may have a body, and
// passes the head on. Informational (1xx) heads pass straight through.
func (pw *pacedWriter) WriteHeader(status int) {
	if pw.wroteHeader || status < 200 {
		pw.ResponseWriter.WriteHeader(status)
		return
	}
	pw.wroteHeader = true
	if status != http.StatusNoContent && status != http.StatusNotModified {
		pw.startPacing()
	}
	pw.ResponseWriter.WriteHeader(status)
}

func (pw *pacedWriter) startPacing() {
	h := pw.Header()
	if ct, rewrite := pw.cfg.contentTypeFor(h.Get("Content-Type"), pw.req); rewrite {
		h.Set("Content-Type", ct)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	plan := pacing.Plan{Chunk: pw.cfg.chunk, Interval: pw.cfg.interval}
	pw.pacer = pacing.NewPacer(pw.req.Context(), pw.ResponseWriter, pw.flushBelow, plan, &pw.clock)
}

// Write paces p, or passes it through if the response is not paced.
func (pw *pacedWriter) Write(p []byte) (int, error) {
	if !pw.wroteHeader {
		pw.WriteHeader(http.StatusOK)
	}
	if pw.pacer == nil {
		return pw.ResponseWriter.Write(p)
	}
	return pw.pacer.Write(p)
}

// ReadFrom paces what it reads from r. Handlers such as file_server copy a
// body with io.Copy, which prefers the writer's ReadFrom; the ReadFrom of
// the writer below (sendfile) would go around pacing, so a paced response
// reads r about a chunk at a time instead.
func (pw *pacedWriter) ReadFrom(r io.Reader) (int64, error) {
	if !pw.wroteHeader {
		pw.WriteHeader(http.StatusOK)
	}
	if pw.pacer != nil {
		return pw.pacer.ReadFrom(r)
	}
	if rf, ok := pw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(pw.ResponseWriter, r)
}

// FlushError flushes what the next handler has written. On a paced response
// that is what the current chunk has written so far (never part of a
// character); a flush never lets a chunk out before its time.
func (pw *pacedWriter) FlushError() error {
	if !pw.wroteHeader {
		pw.WriteHeader(http.StatusOK)
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

// close ends a body that the next handler finished: its last chunk is flushed.
func (pw *pacedWriter) close() error {
	if pw.pacer == nil {
		return nil
	}
	return pw.pacer.Close()
}

// release frees what the writer holds, however the handler ended.
func (pw *pacedWriter) release() {
	pw.clock.Stop()
}

// Interface guards
var (
	_ http.ResponseWriter             = (*pacedWriter)(nil)
	_ io.ReaderFrom                   = (*pacedWriter)(nil)
	_ interface{ FlushError() error } = (*pacedWriter)(nil)
)
