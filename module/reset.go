package pace

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
)

// A cut is reset's, on one response of a network: when the head is written,
// it decides whether the response is cut (its share of them) and after how
// many body bytes, and there it ends the response as a network that fails
// would, with an abort, never as a clean short body.
type cut struct {
	share float64 // the share of paced responses cut, 0.1 for 10%
	at    int64   // cut after this many body bytes; -1 for never
	done  bool    // it was cut
}

// arm decides, as pw starts pacing, whether and where its body is cut: a
// random byte of it, if its length is known; otherwise of its first 64 KiB,
// or its end, whichever comes first. It reports whether the body is cut.
func (c *cut) arm(pw *pacedWriter) bool {
	if !(pw.h.random() < c.share) {
		return false
	}
	size, err := strconv.ParseInt(pw.Header().Get("Content-Length"), 10, 64)
	if err != nil || size <= 0 {
		size = 64 << 10
	}
	c.at = int64(pw.h.random() * float64(size))
	return true
}

// write paces p up to the cut, and cuts there.
func (c *cut) write(pw *pacedWriter, p []byte) (int, error) {
	if c.done {
		return 0, errCut
	}
	if left := c.at - pw.pacer.Stats().Bytes; int64(len(p)) > left {
		n, err := pw.pacer.Write(p[:left])
		if err == nil {
			c.now(pw)
		}
		return n, err
	}
	return pw.pacer.Write(p)
}

// readFrom paces what it reads from r up to the cut, and cuts there.
func (c *cut) readFrom(pw *pacedWriter, r io.Reader) (int64, error) {
	if c.done {
		return 0, errCut
	}
	n, err := pw.pacer.ReadFrom(io.LimitReader(r, c.at-pw.pacer.Stats().Bytes))
	if err == nil {
		c.now(pw)
	}
	return n, err
}

// isDone reports whether the response was cut: its connection is gone, and
// net/http's writer would crash on a flush. A nil cut never is.
func (c *cut) isDone() bool { return c != nil && c.done }

// now cuts the response where it is: on HTTP/1.1 the connection is reset (a
// TCP RST, so that the client cannot take it for a clean end), and on
// HTTP/2 and HTTP/3 the stream, by aborting the handler.
func (c *cut) now(pw *pacedWriter) {
	pw.pacer.Flush()
	c.done = true
	paceMetrics.resets.Inc()
	if conn, _, err := http.NewResponseController(pw.ResponseWriter).Hijack(); err == nil {
		if tc, ok := rawConn(conn).(interface{ SetLinger(int) error }); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
	panic(http.ErrAbortHandler)
}

// errCut is what writing to a response that reset cut gets, from a handler
// that goes on (reverse_proxy's delayed flush, say).
var errCut = errors.New("pace: the response was cut by reset")

// rawConn is the connection under a TLS one.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		return tc.NetConn()
	}
	return c
}
