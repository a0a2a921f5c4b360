package pace

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// On a network, an upgraded connection (a WebSocket) goes through the
// client's link like any response: the bytes each way at the link's rates,
// after its round trips, sharing it with the client's other streams, and
// following its outages and live changes. Frames stay whole: the bytes go
// in order, only later. Outside a network, upgrades pass through untouched.

// serveTunnel serves an upgrade (or CONNECT) through r's client's link.
//
//go:noinline
func (n *network) serveTunnel(h *Handler, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// On HTTP/2 (extended CONNECT), the request's body is the client's way.
	x, leave, err := h.enterLink(r, n, time.Time{})
	defer leave()
	if err != nil {
		return clientGone(err)
	}
	tw := &tunnelWriter{ResponseWriter: w, req: r, x: x}
	defer tw.clock.Stop()
	return next.ServeHTTP(tw, r)
}

// tunnelWriter is the ResponseWriter of an upgrade on a network: its
// hijacked connection goes through the link, and so do its writes (the
// HTTP/2 form, with no hijacking).
type tunnelWriter struct {
	http.ResponseWriter
	req         *http.Request
	x           *pacing.Exchange
	clock       pacing.RealClock
	wroteHeader bool
	down        *pacing.Writer // from the head on
	// writeMu keeps writes and flushes whole and in turn: a proxy writes
	// a closing frame from another goroutine when its config is unloaded.
	writeMu sync.Mutex
}

// WriteHeader sends the head (101 Switching Protocols, or 200 to an
// HTTP/2 CONNECT) once it has come down the link.
func (tw *tunnelWriter) WriteHeader(code int) {
	if !tw.wroteHeader {
		tw.wroteHeader = true
		ctx := tw.req.Context()
		if sleepToHeadFloor(ctx, &tw.clock, tw.x, time.Time{}) == nil {
			// A client gone shows at the next write.
			_, _ = pacing.Await(ctx, &tw.clock, tw.x.Down, onTheWire(tw.req, tw.x, responseHeadSize(tw.Header())), time.Time{})
		}
		tw.x.Up.Resume(time.Now()) // the client sends once it has the head
		tw.down = pacing.NewLimitedWriter(ctx, flushingWriter{tw.ResponseWriter}, tw.x.Down, &tw.clock)
	}
	tw.ResponseWriter.WriteHeader(code)
}

// Hijack hands over the connection, wrapped so that what is read from it
// comes up the link and what is written to it goes down it.
func (tw *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(tw.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	lc := &linkConn{Conn: c}
	ctx, cancel := context.WithCancel(context.Background())
	lc.cancel = cancel
	lc.up = pacing.NewLimitedReader(ctx, c, tw.x.Up, time.Time{}, &lc.readClock)
	lc.down = pacing.NewLimitedWriter(ctx, c, tw.x.Down, &lc.writeClock)
	return lc, brw, nil
}

// Write sends p down the link, flushing each piece.
func (tw *tunnelWriter) Write(p []byte) (int, error) {
	tw.writeMu.Lock()
	defer tw.writeMu.Unlock()
	if !tw.wroteHeader {
		tw.WriteHeader(http.StatusOK)
	}
	return tw.down.Write(p)
}

// FlushError flushes the writer below, in turn with the writes: a proxy
// flushes after each of its writes, and may write from two goroutines.
func (tw *tunnelWriter) FlushError() error {
	tw.writeMu.Lock()
	defer tw.writeMu.Unlock()
	return http.NewResponseController(tw.ResponseWriter).Flush()
}

// Unwrap returns the writer below, for http.ResponseController.
func (tw *tunnelWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }

// flushingWriter flushes every write.
type flushingWriter struct{ w http.ResponseWriter }

func (f flushingWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

// linkConn is an upgraded connection through a client's link: a Read
// returns once the link has carried what it read up, a Write once it has
// carried what it writes down. Reads and writes may run at once (one
// goroutine each way), as a proxy's copies do.
type linkConn struct {
	net.Conn
	up     *pacing.Reader
	down   *pacing.Writer
	cancel context.CancelFunc // ends the waits, at Close

	readMu, writeMu       sync.Mutex
	readClock, writeClock pacing.RealClock
}

func (c *linkConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.up.Read(p)
}

func (c *linkConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.down.Write(p)
}

// CloseWrite shuts the way down once what was written has gone, where the
// connection can (TCP): a proxy passes on its upstream's half-close so.
func (c *linkConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.ErrUnsupported
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return cw.CloseWrite()
}

// Close closes the connection, and ends its waits at once. (Their clocks'
// timers belong to the Read and Write that may still be returning; nothing
// holds them after, so they need no Stop.)
func (c *linkConn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

// Interface guards
var (
	_ http.Hijacker = (*tunnelWriter)(nil)
	_ io.ReadWriter = (*linkConn)(nil)
)
