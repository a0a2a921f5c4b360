package pace

import (
	"context"
	"net/http"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A downLink is a response's way down its client's link (the exchange's
// Down stream), which its head takes before the body: under the devtools
// model no sooner than the latency after the request, and then its bytes.
// Under the link model an HTTP/1.1 head with a body to follow is not
// flushed on its own: it rides with the body's first piece, in its
// packets, as a server's buffered head does.
type downLink struct {
	x      *pacing.Exchange
	model  pacing.Model
	riding bool // the head goes with the body's first piece
}

// holdHead waits until pw's head has come down the link, or has it ride
// with the body's first piece if bodyFollows.
func (d *downLink) holdHead(pw *pacedWriter, bodyFollows bool) error {
	ctx := pw.req.Context()
	if err := sleepToHeadFloor(ctx, &pw.clock, d.x, pw.deadline); err != nil {
		return err
	}
	size := onTheWire(pw.req, d.x, responseHeadSize(pw.Header()))
	if bodyFollows && pw.req.ProtoMajor == 1 && d.model == pacing.LinkModel {
		d.x.Down.Ride(size)
		d.riding = true
		return nil
	}
	_, err := pacing.Await(ctx, &pw.clock, d.x.Down, size, pw.deadline)
	return err
}

// rides reports whether a head waits to go with the body's first piece.
// A nil downLink (a response on no network) has none.
func (d *downLink) rides() bool { return d != nil && d.riding }

// sendHead sends a head that was to go with the body's first piece on its
// own: the next handler flushed before writing any, or wrote none.
func (d *downLink) sendHead(pw *pacedWriter) error {
	d.riding = false
	n := d.x.Down.Unride()
	if n == 0 {
		return nil // it went with a piece
	}
	_, err := pacing.Await(pw.req.Context(), &pw.clock, d.x.Down, n, pw.deadline)
	return err
}

// sleepToHeadFloor sleeps until x's response head may leave under the
// devtools model (no sooner than its latency after the request), but not
// past deadline (none if zero).
func sleepToHeadFloor(ctx context.Context, clock *pacing.RealClock, x *pacing.Exchange, deadline time.Time) error {
	floor := x.HeadFloor()
	if floor.IsZero() {
		return nil
	}
	d := time.Until(floor)
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	return clock.Sleep(ctx, d)
}

// onTheWire is about what a head of size bytes as HTTP/1.1 takes on the
// wire in x: as much over HTTP/1.1, and on HTTP/2 and HTTP/3 too for a
// connection's first exchange; its later heads are compressed against the
// first (HPACK, QPACK), to some compressedHead bytes (measured: 62 bytes a
// request and 56 a response head, Chromium and Caddy over HTTP/2).
func onTheWire(r *http.Request, x *pacing.Exchange, size int) int {
	if r.ProtoMajor >= 2 && !x.First {
		return compressedHead
	}
	return size
}

const compressedHead = 64

// requestHeadSize is about what r's head takes on the wire as HTTP/1.1.
func requestHeadSize(r *http.Request) int {
	return len(r.Method) + len(r.RequestURI) + len("  HTTP/1.1\r\nHost: \r\n\r\n") + len(r.Host) + headerSize(r.Header)
}

// responseHeadSize is about what a response head takes on the wire as
// HTTP/1.1, with the Date and Server lines net/http and Caddy add.
func responseHeadSize(h http.Header) int {
	return len("HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nServer: Caddy\r\n\r\n") + headerSize(h)
}

func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}
