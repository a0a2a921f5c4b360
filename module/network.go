package pace

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A network is what a preset, rtt or model makes of a pace: one link per
// client (pacing.Link), which every response, upload and upgraded
// connection of the client goes through. The parser builds it once (see
// draft.build); a request takes it as it is.
type network struct {
	cond   pacing.Network // the link's conditions
	preset string         // the preset's name, for people; "" for none
	reset  float64        // the share of paced responses cut, 0.1 for 10%
	key    string         // share, resolved: the link's key; "" for the client's address
}

// The links live in a caddy.UsagePool, so that they outlive config reloads,
// and each connection's handshake and congestion windows live in the
// connection's context.

// sharedLinks holds the links of networks across config reloads, for as
// long as a loaded config has a pace that may be a network.
var sharedLinks = caddy.NewUsagePool()

const sharedLinksKey = "pace.links"

// maxIdleLinks bounds the links that no exchange is using.
var maxIdleLinks = 10000

type linksHolder struct{ *pacing.Links }

func (linksHolder) Destruct() error { return nil }

// connKey is the context key of a connection's *connSlot.
type connKey struct{}

// A connSlot holds a TCP connection's pacing.Conn, made when a network
// first serves a request on it: a site that paces some routes on a network
// and others not costs its other connections 40 bytes each, not a Conn's
// two windows.
type connSlot struct {
	opened time.Time
	once   sync.Once
	conn   *pacing.Conn
}

// get returns the slot's Conn, opened when the server accepted it.
func (s *connSlot) get() *pacing.Conn {
	s.once.Do(func() { s.conn = pacing.NewConn(s.opened) })
	return s.conn
}

// provisionNetwork takes the links, and has the server give every new
// connection a slot for its pacing.Conn, opened when the server accepted it.
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
			return context.WithValue(ctx, connKey{}, &connSlot{opened: time.Now()})
		})
	}
	return nil
}

// serve serves r through its client's link: the request goes up the link
// (after the connection's handshakes, if it is new), the next handler reads
// its body from the link, and the response comes down it.
//
//go:noinline
func (n *network) serve(h *Handler, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, o *options, deadline time.Time) error {
	x, leave, err := h.enterLink(r, n, deadline)
	defer leave()
	if err != nil {
		return clientGone(err)
	}
	pw := newPacedWriter(w, r, h, o, deadline)
	pw.link = &downLink{x: x, model: n.cond.Model}
	if n.reset > 0 {
		pw.cut = &cut{share: n.reset, at: -1}
	}
	return h.serveWriter(pw, r, next)
}

// enterLink takes r's client's link for r's exchange, and has the request
// go up it: its head (after the connection's handshakes, if it is new)
// before enterLink returns, and its body as the next handler reads it
// (r.Body is replaced). leave, never nil, hands the link back.
func (h *Handler) enterLink(r *http.Request, n *network, deadline time.Time) (x *pacing.Exchange, leave func(), err error) {
	now := time.Now()
	held := h.acquireLink(r, n, now)
	var clock pacing.RealClock
	body := &uploadBody{Closer: r.Body}
	leave = func() {
		clock.Stop()
		body.clock.Stop()
		h.links.Release(held, time.Now())
	}
	x = held.Value.Open(connOf(r, now), handshakes(r), now)
	if n.cond.Model == pacing.LinkModel {
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
// n's conditions.
func (h *Handler) acquireLink(r *http.Request, n *network, now time.Time) *pacing.HeldLink {
	if h.named != nil {
		return h.named.acquire(r, now)
	}
	return h.links.Acquire(n.linkKey(r), n.cond, now)
}

// linkKey is the key of r's link: share, or the client's address.
func (n *network) linkKey(r *http.Request) string {
	if n.key != "" {
		return n.key
	}
	return clientAddress(r)
}

// clientAddress is the address of r's client: Caddy's client_ip, the
// remote host, or behind trusted proxies the client they name.
func clientAddress(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// connOf returns the pacing.Conn of r's connection: a TCP connection's, in
// its context since the server accepted it; or an HTTP/3 request's QUIC
// connection's (quicConns); nil if neither is known.
func connOf(r *http.Request, now time.Time) *pacing.Conn {
	if slot, ok := r.Context().Value(connKey{}).(*connSlot); ok {
		return slot.get()
	}
	if r.ProtoMajor == 3 {
		return quicConns.conn(r, now)
	}
	return nil
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
