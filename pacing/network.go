package pacing

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// A Model says how a Network's numbers are applied.
type Model uint8

const (
	// LinkModel applies them as a packet-level link of that round-trip time
	// and those rates would: a new connection pays its handshakes, every
	// request a round trip, every connection TCP's slow start, and every
	// packet of 1500 bytes carries 1448 of payload.
	LinkModel Model = iota
	// DevToolsModel applies them as Chrome DevTools' throttling does: a
	// response's head arrives no sooner than Latency after its request was
	// sent, and the rates are shared by all of a client's requests.
	DevToolsModel
)

// A Network is the conditions of the link between a client and the server.
// It is a value: a Link holds one, and links of equal Networks are alike.
type Network struct {
	Model Model
	// RTT is the round-trip time, under LinkModel.
	RTT time.Duration
	// Latency is the least time from a request to its response's head,
	// under DevToolsModel.
	Latency time.Duration
	// Down and Up are the rates to and from the client, in bytes per second;
	// 0 is no limit. Under LinkModel they are the link's raw rates.
	Down, Up float64
	// DownTrace and UpTrace, when set, are the link's capacity each way
	// over time, in place of Down and Up.
	DownTrace, UpTrace *Trace
	// Loss is the share of packets the link loses each way (0.02 for 2%),
	// under LinkModel; LossBurst, if above 1, the mean length of a burst of
	// losses, at the same mean share.
	Loss, LossBurst float64
	// For Outage out of every OutageEvery, the link carries nothing, both
	// ways.
	Outage, OutageEvery time.Duration
	// Offline, the link carries nothing at all until its conditions
	// change.
	Offline bool
	// Queue is the bottleneck queue of each way, under LinkModel; the zero
	// Queue is none, fair shares with no queueing delay.
	Queue Queue
}

// way is one way of the network: down, or up.
func (n *Network) way(down bool) way {
	w := way{rate: n.Up, trace: n.UpTrace, outage: n.Outage, every: n.OutageEvery, offline: n.Offline}
	if down {
		w.rate, w.trace = n.Down, n.DownTrace
	}
	if n.Model == LinkModel {
		w.loss, w.burst, w.queue = n.Loss, n.LossBurst, n.Queue
	}
	return w
}

// A Conn is one connection of a client: when it was opened, when its
// handshakes are done, and its congestion window each way. Its exchanges
// may run at once (HTTP/2): it is safe for concurrent use.
type Conn struct {
	opened time.Time
	quic   bool // a QUIC connection: no TCP handshake

	hsMu      sync.Mutex
	handshake time.Time  // when the handshakes are done; zero until known
	queued    *handshake // through queues, its packets' places in them
	exchanges int        // exchanges opened on it

	mu       sync.Mutex // guards the windows
	down, up window
}

// NewConn returns a TCP connection opened at opened.
func NewConn(opened time.Time) *Conn {
	return &Conn{opened: opened}
}

// NewQUICConn returns a QUIC connection (HTTP/3's) whose first packet came
// at opened: its handshake is TLS's in one round trip, with no TCP's before
// it, and its windows start at 32 packets of 1280 bytes, as quic-go's and
// Chromium's do (28 of the link's 1500-byte packets).
func NewQUICConn(opened time.Time) *Conn {
	c := &Conn{opened: opened, quic: true}
	c.down.initial, c.up.initial = quicInitialPackets, quicInitialPackets
	return c
}

// quicInitialPackets is a QUIC connection's first window: 32 packets of
// 1280 bytes, in packets of PacketSize.
const quicInitialPackets = 32 * 1280 / PacketSize

// A Link is the link between one client and the server, under one Network:
// a way down and a way up, each shared by all the client's connections and
// exchanges. Its conditions may change while it carries streams
// (SetNetwork). It is safe for concurrent use.
type Link struct {
	net      atomic.Pointer[Network]
	down, up pipe
	kept     atomic.Bool
}

// NewLink returns a link under net, idle at now, when its traces and
// outages start.
func NewLink(net Network, now time.Time) *Link {
	l := &Link{}
	l.net.Store(&net)
	l.down.init(net.way(true), now, rand.Float64)
	l.up.init(net.way(false), now, rand.Float64)
	return l
}

// Network returns the link's conditions.
func (l *Link) Network() Network { return *l.net.Load() }

// SetNetwork changes the link's conditions from now on, for the streams it
// carries too: what was booked on it goes as it was, and the next pieces
// go at the new rates, after the new round trip (a stream's model stays
// the one it began under). A trace and outages start again at now.
func (l *Link) SetNetwork(net Network, now time.Time) {
	l.net.Store(&net)
	l.down.setWay(net.way(true), now)
	l.up.setWay(net.way(false), now)
}

// Carried is the payload bytes booked on the link so far, down and up.
func (l *Link) Carried() (down, up int64) {
	return l.down.carried.Load(), l.up.carried.Load()
}

// Keep has Links keep the link while it is idle, even once it has carried
// all that was booked on it (kept true): a link with conditions of its own,
// whose figures should last. Links past their bound of idle links forget it
// all the same.
func (l *Link) Keep(kept bool) { l.kept.Store(kept) }

// drained reports whether the link has carried all that was booked on it by
// now, so that forgetting it and making a new one changes nothing, and is
// not kept.
func (l *Link) drained(now time.Time) bool {
	return !l.kept.Load() && l.down.drained(now) && l.up.drained(now)
}

// An Exchange is one request and its response on a link. Up carries the
// request, Down the response; each serves one goroutine at a time.
type Exchange struct {
	Up, Down *Stream
	// First is whether the exchange is its connection's first, whose
	// headers HTTP/2 and HTTP/3 cannot yet compress against earlier ones.
	First bool
	link  *Link
	sent  time.Time // when the client sent the request
}

// Open starts an exchange whose request the client sent at now, on conn,
// whose handshakes take that many round trips: 1 for TCP, 1 more for
// TLS 1.3 or 2 for TLS 1.2; 1 in all for QUIC. A connection's first
// exchange sets when its handshakes are done, from when it was opened: the
// round trips, and under TLS the bytes of the handshake's first flights
// each way (TLSClientFlight, TLSServerFlight), which take their time on the
// link and their packets of the windows. Under DevToolsModel, which knows no
// connections, and where the connection is not known (conn nil), there are
// no handshakes and no windows.
func (l *Link) Open(conn *Conn, handshakes int, now time.Time) *Exchange {
	x := &Exchange{link: l, sent: now, Down: l.stream(&l.down, conn), Up: l.stream(&l.up, conn)}
	x.Up.next = now
	if l.net.Load().Model != LinkModel || conn == nil {
		return x
	}
	conn.hsMu.Lock()
	if conn.handshake.IsZero() {
		conn.handshake, conn.queued = l.handshake(conn, handshakes)
	}
	x.Up.next = later(now, conn.handshake)
	x.Up.hs = conn.queued
	x.First = conn.exchanges == 0
	conn.exchanges++
	conn.hsMu.Unlock()
	return x
}

// stream returns a stream on one way of the link, through conn's window
// that way under LinkModel.
func (l *Link) stream(p *pipe, conn *Conn) *Stream {
	s := &Stream{link: l, pipe: p, cost: wholePackets}
	if l.net.Load().Model != LinkModel {
		return s
	}
	s.cost = segmentHeaders
	if conn != nil {
		s.conn, s.win = conn, &conn.down
		if p == &l.up {
			s.win = &conn.up
		}
	}
	return s
}

// The first flights of a TLS handshake, as measured between Chromium and
// Caddy: the client's ClientHello (with a post-quantum key share), and the
// server's flight from ServerHello to Finished with an ECDSA certificate
// chain. A server with a longer chain sends more.
const (
	TLSClientFlight = 2003
	TLSServerFlight = 2609
)

// handshake returns when conn's handshakes are done: TCP's round trip, and
// for TLS the client's flight up and the server's down (and one more round
// trip for TLS 1.2), each on the link.
//
// Through queues, its packets wait in them, and a piece sent before one of
// them but booked after it pushes it on: queued holds their places, which
// the connection's first request settles on before it goes (see
// handshake.settle).
func (l *Link) handshake(conn *Conn, handshakes int) (done time.Time, queued *handshake) {
	rtt := l.net.Load().RTT
	t := conn.opened // QUIC's client sends its TLS flight at once
	if _, ok := l.down.longestWait(); ok {
		queued = &handshake{}
	}
	if !conn.quic {
		t = l.roundTrip(t, queued) // SYN and SYN-ACK; the client sends with its ACK
		handshakes--
	}
	if handshakes < 1 || l.net.Load().Offline {
		return queued.end(t), queued
	}
	up, down := l.stream(&l.up, conn), l.stream(&l.down, conn)
	up.next = t
	t = t.Add(up.Reserve(t, TLSClientFlight)) // at the server
	queued.add(up.queued)
	down.next = t
	t = t.Add(down.Reserve(t, TLSServerFlight)) // back at the client
	queued.add(down.queued)
	return queued.end(t.Add(time.Duration(handshakes-1) * rtt)), queued
}

// A handshake is a new connection's handshake through a link's queues:
// where its packets wait in them, and how they stood when it was worked
// out. A piece sent before one of them but booked after it pushes it on,
// and the handshake with it.
type handshake struct {
	bookings []*booking
	ends     []int64   // each booking's end, as it stood
	done     time.Time // when the handshake ends, as it stood
}

// add records a booking of the handshake's (none if b is nil).
func (h *handshake) add(b *booking) {
	if h != nil && b != nil {
		h.bookings, h.ends = append(h.bookings, b), append(h.ends, b.end.Load())
	}
}

// end records when the handshake ends as it stands, and returns it.
func (h *handshake) end(done time.Time) time.Time {
	if h != nil {
		h.done = done
	}
	return done
}

// settle returns when the handshake ends: as it stood, moved on by as far
// as pieces sent before its packets pushed them on since. Each of its
// packets is sent once the one before has arrived, so a push moves every
// later one by as much: the handshake moves by the largest push, not by
// their sum.
func (h *handshake) settle() time.Time {
	var push int64
	for i, b := range h.bookings {
		push = max(push, b.end.Load()-h.ends[i])
	}
	return h.done.Add(time.Duration(push))
}

// controlPacket is a packet with no payload, such as a SYN: IP and TCP
// headers with their options.
const controlPacket = 60

// roundTrip returns when a packet with no payload that the client sends at
// t, and the server's answer, are back at the client: a round trip later,
// and through the ways' queues, behind what waits in them; queued records
// their places there. A queue that is full drops them, as it drops any
// packet, and each is sent again after a timeout of a second, doubled each
// time (TCP's first retransmission timeout, before it knows the round
// trip).
func (l *Link) roundTrip(t time.Time, queued *handshake) time.Time {
	rtt := l.net.Load().RTT
	upWait, ok := l.up.longestWait()
	if !ok {
		return t.Add(rtt)
	}
	downWait, _ := l.down.longestWait()
	back := rtt/2 + maxCatchUp
	syn := l.control(&l.up, t, back+upWait)
	t = syn.endTime().Add(rtt / 2)
	synAck := l.control(&l.down, t, back+downWait)
	queued.add(syn)
	queued.add(synAck)
	return synAck.endTime().Add(rtt / 2)
}

// synTimeout is TCP's first retransmission timeout.
const synTimeout = time.Second

// control books a packet with no payload sent at t on p, again and again
// after its timeouts while the queue drops it (the sixth time, whatever
// the queue holds).
func (l *Link) control(p *pipe, t time.Time, back time.Duration) *booking {
	timeout := synTimeout
	for try := 1; ; try++ {
		if b, _ := p.enqueue(t, t, controlPacket, 1, try == 6, back, true); b != nil {
			return b
		}
		t = t.Add(timeout)
		timeout *= 2
	}
}

// HeadFloor is the earliest the response's head may reach the client under
// DevToolsModel: Latency after the request was sent, its body included. It
// is zero under LinkModel, where the head travels Down like the body.
func (x *Exchange) HeadFloor() time.Time {
	net := x.link.net.Load()
	if net.Model != DevToolsModel {
		return time.Time{}
	}
	return later(x.sent, x.Up.arrived).Add(net.Latency)
}
