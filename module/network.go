package pace

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A network (a preset, rtt or model) puts every response and upload of a
// client through one link, pacing.Link, keyed by the client's address or by
// share. The links live in a caddy.UsagePool, so that they outlive config
// reloads, and each connection's handshake and congestion windows live in
// the connection's context.

// sharedLinks holds the links of networks across config reloads, for as
// long as a loaded config has a pace that may be a network.
var sharedLinks = caddy.NewUsagePool()

const sharedLinksKey = "pace.links"

// maxIdleLinks bounds the links that no exchange is using.
var maxIdleLinks = 10000

type linksHolder struct{ *pacing.Links }

func (linksHolder) Destruct() error { return nil }

// connKey is the context key of a connection's *pacing.Conn.
type connKey struct{}

// provisionNetwork takes the links, and has the server give every new
// connection a pacing.Conn, opened when the server accepted it.
func (h *Handler) provisionNetwork(ctx caddy.Context) error {
	v, _, err := sharedLinks.LoadOrNew(sharedLinksKey, func() (caddy.Destructor, error) {
		return linksHolder{pacing.NewLinks(maxIdleLinks)}, nil
	})
	if err != nil {
		return err
	}
	h.links = v.(linksHolder).Links
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srv.RegisterConnContext(func(ctx context.Context, _ net.Conn) context.Context {
			if ctx.Value(connKey{}) != nil { // another pace registered it
				return ctx
			}
			return context.WithValue(ctx, connKey{}, pacing.NewConn(time.Now()))
		})
	}
	return nil
}

// mayBeNetwork reports whether the handler is a network, or may be one for
// some request once its placeholders resolve.
func (h *Handler) mayBeNetwork() bool {
	return h.Preset != "" || h.RTT != "" || h.Model != ""
}

// serveNetwork serves r through its client's link: the request goes up the
// link (after the connection's handshakes, if it is new), the next handler
// reads its body from the link, and the response comes down it.
//
//go:noinline
func (h *Handler) serveNetwork(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, o *options, deadline time.Time) error {
	x, leave, err := h.enterLink(r, o, deadline)
	defer leave()
	if err != nil {
		return clientGone(err)
	}
	pw := newPacedWriter(w, r, h, o, deadline)
	pw.exchange = x
	return h.serveWriter(pw, r, next)
}

// enterLink takes r's client's link for r's exchange, and has the request
// go up it: its head (after the connection's handshakes, if it is new)
// before enterLink returns, and its body as the next handler reads it
// (r.Body is replaced). leave, never nil, hands the link back.
func (h *Handler) enterLink(r *http.Request, o *options, deadline time.Time) (x *pacing.Exchange, leave func(), err error) {
	now := time.Now()
	held := h.acquireLink(r, o, now)
	var clock pacing.RealClock
	body := &uploadBody{Closer: r.Body}
	leave = func() {
		clock.Stop()
		body.clock.Stop()
		h.links.Release(held, time.Now())
	}
	conn, _ := r.Context().Value(connKey{}).(*pacing.Conn)
	x = held.Value.Open(conn, handshakes(r), now)
	if o.model == pacing.LinkModel {
		if _, err := pacing.Await(r.Context(), &clock, x.Up, onTheWire(r, x, requestHeadSize(r)), deadline); err != nil {
			return x, leave, err
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		body.Reader = pacing.NewLimitedReader(r.Context(), r.Body, x.Up, deadline, &body.clock)
		r.Body = body
	}
	return x, leave, nil
}

// acquireLink takes r's client's link: the named network's, or the one of
// o's conditions.
func (h *Handler) acquireLink(r *http.Request, o *options, now time.Time) *pacing.HeldLink {
	if h.named != nil {
		return h.named.acquire(linkKeyFor(r, o), now)
	}
	return h.links.Acquire(linkKeyFor(r, o), o.network(), now)
}

// linkKeyFor is the key of r's link: share, or the client's address
// (Caddy's client_ip: the remote host, or behind trusted proxies the client
// they name).
func linkKeyFor(r *http.Request, o *options) string {
	if o.share != "" {
		return o.share
	}
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// handshakes is how many round trips r's connection took to open: 1 for
// TCP, 1 more for TLS 1.3 and 2 for TLS 1.2; 1 in all for QUIC.
func handshakes(r *http.Request) int {
	switch {
	case r.ProtoMajor == 3:
		return 1
	case r.TLS == nil:
		return 1
	case r.TLS.Version >= tls.VersionTLS13:
		return 2
	}
	return 3
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

// holdNetworkHead waits until the response head has come down the link:
// under the devtools model no sooner than the latency after the request;
// then its bytes on the way down (and under the link model half a round
// trip). An HTTP/1.1 head with a body to follow is not flushed on its own
// under the link model: it goes with the body's first piece, in its
// packets, as a server's buffered head does.
func (pw *pacedWriter) holdNetworkHead(bodyFollows bool) error {
	x := pw.exchange
	ctx := pw.req.Context()
	if err := sleepToHeadFloor(ctx, &pw.clock, x, pw.deadline); err != nil {
		return err
	}
	size := onTheWire(pw.req, x, responseHeadSize(pw.Header()))
	if bodyFollows && pw.req.ProtoMajor == 1 && pw.opts.model == pacing.LinkModel {
		x.Down.Ride(size)
		pw.riding = true
		return nil
	}
	_, err := pacing.Await(ctx, &pw.clock, x.Down, size, pw.deadline)
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

// sendHeadAlone sends a head that was to go with the body's first piece on
// its own: the next handler flushed before writing any, or wrote none.
func (pw *pacedWriter) sendHeadAlone() error {
	pw.riding = false
	n := pw.exchange.Down.Unride()
	if n == 0 {
		return nil // it went with a piece
	}
	_, err := pacing.Await(pw.req.Context(), &pw.clock, pw.exchange.Down, n, pw.deadline)
	return err
}
