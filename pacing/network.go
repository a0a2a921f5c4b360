package pacing

import (
	"math"
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
}

// way is one way of the network: down, or up.
func (n *Network) way(down bool) way {
	w := way{rate: n.Up, trace: n.UpTrace, outage: n.Outage, every: n.OutageEvery, offline: n.Offline}
	if down {
		w.rate, w.trace = n.Down, n.DownTrace
	}
	if n.Model == LinkModel {
		w.loss, w.burst = n.Loss, n.LossBurst
	}
	return w
}

// rate is a way's mean rate in bytes per second: its trace's, or its rate.
func (w way) meanRate() float64 {
	if w.trace != nil {
		return w.trace.Rate()
	}
	return w.rate
}

// A Conn is one connection of a client: when it was opened, when its
// handshakes are done, and its congestion window each way. Its exchanges
// may run at once (HTTP/2): it is safe for concurrent use.
type Conn struct {
	opened time.Time

	hsMu      sync.Mutex
	handshake time.Time // when the handshakes are done; zero until known
	exchanges int       // exchanges opened on it

	mu       sync.Mutex // guards the windows
	down, up window
}

// NewConn returns a connection opened at opened.
func NewConn(opened time.Time) *Conn {
	return &Conn{opened: opened}
}

// A Link is the link between one client and the server, under one Network:
// a way down and a way up, each shared by all the client's connections and
// exchanges. Its conditions may change while it carries streams
// (SetNetwork). It is safe for concurrent use.
type Link struct {
	net      atomic.Pointer[Network]
	down, up pipe
}

// NewLink returns a link under net, idle at now, when its traces and
// outages start.
func NewLink(net Network, now time.Time) *Link {
	l := &Link{}
	l.net.Store(&net)
	l.down = newPipe(net.way(true), now, rand.Float64)
	l.up = newPipe(net.way(false), now, rand.Float64)
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

// drained reports whether the link has carried all that was booked on it by
// now, so that forgetting it and making a new one changes nothing.
func (l *Link) drained(now time.Time) bool {
	return l.down.drained(now) && l.up.drained(now)
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
		conn.handshake = l.handshake(conn, handshakes)
	}
	x.Up.next = later(now, conn.handshake)
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
func (l *Link) handshake(conn *Conn, handshakes int) time.Time {
	rtt := l.net.Load().RTT
	t := conn.opened.Add(rtt) // SYN and SYN-ACK; the client sends with its ACK
	if handshakes < 2 || l.net.Load().Offline {
		return t
	}
	up, down := l.stream(&l.up, conn), l.stream(&l.down, conn)
	up.next = t
	t = t.Add(up.Reserve(t, TLSClientFlight)) // at the server
	down.next = t
	t = t.Add(down.Reserve(t, TLSServerFlight)) // back at the client
	return t.Add(time.Duration(handshakes-2) * rtt)
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

// devToolsPiece is what a Stream books at once under DevToolsModel: 10 ms
// of the rate in whole packets, at least one. DevTools hands its throughput
// out a packet at a time, in turn.
func devToolsPiece(rate float64) int {
	return int(max(math.Floor(rate*0.01/PacketSize), 1)) * PacketSize
}

// pieceTime is about how long the link takes to carry a Stream's piece.
const pieceTime = 25 * time.Millisecond

// PieceSize is how much of a stream a Stream books at once: what the rate
// carries in pieceTime, in whole segments, from one segment to
// InitialWindow, so that a new connection's window holds a whole piece.
func PieceSize(rate float64) int {
	if rate <= 0 {
		return InitialWindow
	}
	segments := math.Floor(rate * pieceTime.Seconds() / SegmentSize)
	return int(min(max(segments, 1), InitialWindow/SegmentSize)) * SegmentSize
}

// A Stream is one way of an Exchange. It lets bytes leave as the link
// carries them: each piece waits until its connection's window lets it into
// flight, then for its turn on the link, which carries the pieces of all the
// client's streams in the order they are booked, and then arrives half a
// round trip later. It is the Pacer's and the Reader's Limiter.
type Stream struct {
	link *Link
	pipe *pipe
	conn *Conn   // nil: no window (DevToolsModel)
	win  *window // conn's window this way
	cost costing // what bytes cost on the link: its model's way of counting
	sent int     // bytes booked so far
	// open is how many bytes the stream's last segment holds, when it
	// has room for more: bytes that follow at once fill it before a new
	// packet starts, however the Pacer cut them. A source that pauses
	// closes it.
	open int

	// next is when the stream's next piece may start on the link: where
	// its last one ended, moved on by the time its source was idle since.
	next    time.Time
	arrived time.Time // when its last piece arrived
	after   int       // bytes the source has handed over after the piece being booked
	riding  int       // bytes to book with the next piece (Ride)
}

// Burst is the most bytes one Reserve may ask for: a piece, or while the
// connection's window has less room, what it has room for (at least a
// segment), so that a new connection's first round trip is full.
func (s *Stream) Burst() int {
	burst := s.piece()
	if s.win == nil {
		return burst
	}
	s.conn.mu.Lock()
	room := s.win.room()
	s.conn.mu.Unlock()
	return min(burst, max(room, SegmentSize))
}

// piece is what the stream books at once at the link's rate where its next
// piece starts (under a trace, the trace's rate there, not its mean).
func (s *Stream) piece() int {
	rate := s.pipe.rateFrom(s.next)
	if s.cost == wholePackets {
		return devToolsPiece(rate)
	}
	return PieceSize(rate)
}

// Rate is the link's rate this way, in bytes per second (0: no limit).
func (s *Stream) Rate() float64 { return s.pipe.meanRate() }

// rtt is the link's round-trip time, under the link model (DevTools' knows
// none), and delay half of it: from leaving the link to arriving.
func (s *Stream) rtt() time.Duration {
	if s.cost != segmentHeaders {
		return 0
	}
	return s.link.net.Load().RTT
}

func (s *Stream) delay() time.Duration { return s.rtt() / 2 }

// idle moves the stream's next piece on by d, the time its source took: a
// source that pauses earns no credit on the link.
func (s *Stream) idle(d time.Duration) {
	if d >= minIdle && !s.next.IsZero() {
		s.next = s.next.Add(d)
		s.open = 0
	}
}

// resume tells the stream that its source, which had nothing for d,
// handed over its next bytes at now: a client uploading, or either side of
// an upgraded connection, which keep their own time. The bytes leave no
// sooner than now. (A Pacer's source is held back by the link, and idle
// counts its pauses from there.)
func (s *Stream) resume(d time.Duration, now time.Time) {
	if d >= minIdle {
		s.Resume(now)
	}
}

// Resume tells the stream that its source had nothing to send before now,
// such as the client of an upgraded connection, which sends once it has the
// server's answer: its next bytes leave no sooner.
func (s *Stream) Resume(now time.Time) {
	s.next = later(s.next, now)
	s.open = 0
}

// segments is how many new packets n more bytes of the stream start: those
// that do not fit in its open segment.
func (s *Stream) segments(n int) int {
	return (max(s.open+n, 1)+SegmentSize-1)/SegmentSize - (s.open+SegmentSize-1)/SegmentSize
}

// minIdle is the shortest pause of a source that the link sees: a server's
// socket buffer hides shorter ones, such as the time a handler takes to
// read its next block of a file.
const minIdle = 2 * time.Millisecond

// ready is when the stream's next piece, due at now, may start on the link:
// where its last piece ended, or if it fell behind (its Pacer ran late, and
// its piece arrives later than the link would have carried it) at most
// maxCatchUp before its time, so that it catches up.
func (s *Stream) ready(now time.Time) time.Time {
	if s.next.IsZero() {
		s.next = now
	}
	return later(s.next, now.Add(-s.delay()-maxCatchUp))
}

// Open returns how long to wait until the connection's window lets n more
// bytes into flight: a piece is booked on the link only once it may go, so
// that a connection in slow start holds no place on the link that another
// connection could use.
func (s *Stream) Open(now time.Time, n int) time.Duration {
	if s.pipe.isOffline() {
		return offlinePoll
	}
	if s.win == nil {
		return 0
	}
	s.conn.mu.Lock()
	t := s.win.open(s.ready(now), s.segments(n+s.riding), s.rtt())
	s.conn.mu.Unlock()
	return max(t.Add(s.delay()).Sub(now), 0)
}

// offlinePoll is how often a stream on an offline link looks whether it is
// back: within this of a change, it goes on.
const offlinePoll = 50 * time.Millisecond

// Reserve books n bytes (at most Burst) due at now and returns how long to
// wait until they have arrived.
func (s *Stream) Reserve(now time.Time, n int) time.Duration {
	ready := s.ready(now)
	rtt, delay := s.rtt(), s.delay()
	n, s.riding = n+s.riding, 0 // a head riding with this piece, in its packets
	p := s.segments(n)
	cost := s.cost.of(s.sent, n, p)
	s.sent += n
	s.open = (s.open + n) % SegmentSize
	if s.pipe.carried != nil {
		s.pipe.carried.Add(int64(n))
	}
	if s.win != nil {
		s.conn.mu.Lock()
		defer s.conn.mu.Unlock()
		ready = s.win.open(ready, p, rtt)
	}
	start, end := s.pipe.book(ready, cost)
	arrived := end.Add(delay)
	lost, first := s.pipe.lose(p)
	var resent time.Time // when the lost packets' retransmission is acknowledged
	if lost > 0 {
		arrived, resent = s.recover(end, s.tail(n, p, first), lost, rtt)
	}
	if s.win != nil {
		// The packets that arrived are acknowledged as they come (SACK);
		// the lost ones once sent again.
		s.win.sent(ready, start.Add(rtt), end.Add(rtt), p, lost, resent)
		// In order: nothing the connection sends after a lost packet
		// arrives before it does.
		arrived = later(arrived, s.win.blocked)
		if lost > 0 {
			s.win.blocked = arrived
		}
	}
	s.next = end
	s.arrived = arrived
	return max(s.arrived.Sub(now), 0).Round(time.Microsecond)
}

// Ride has n bytes (an HTTP/1.1 response's head, written but not flushed)
// go with the stream's next piece, in the same packets, as a server's
// buffered head goes out with the first of its body.
func (s *Stream) Ride(n int) { s.riding += n }

// Unride takes back the bytes waiting to ride with the next piece, for
// when they must go on their own (a flush, or no body), and returns them.
func (s *Stream) Unride() int {
	n := s.riding
	s.riding = 0
	return n
}

// ahead is told how many bytes the source has handed over after the piece
// about to be booked.
func (s *Stream) ahead(n int) { s.after = n }

// tail reports whether a loss at packet first of a piece of n bytes is a
// tail loss, which nothing sent after it reveals: fewer than three packets
// follow it in the piece, and the source has handed over nothing after it,
// in a piece shorter than the stream's burst.
func (s *Stream) tail(n, p, first int) bool {
	return p-first-1 < 3 && s.after == 0 && n < s.piece()
}

// recover returns when a piece that the link carried by end, lost of its
// packets lost, has arrived whole, and when its acknowledgement comes back.
// The sender sees the loss a round trip after the piece left, from the
// duplicate acknowledgements of the packets after it, or for a tail loss
// after a probe timeout of two round trips, at least a minimum
// retransmission timeout. It sends the lost packets again, which take their
// time on the link, and halves its window.
func (s *Stream) recover(end time.Time, tail bool, lost int, rtt time.Duration) (arrived, acked time.Time) {
	seen := end.Add(rtt)
	if tail {
		seen = end.Add(max(2*rtt, minRTO))
	}
	// The retransmission takes its share of the link now, behind the piece,
	// rather than a place booked ahead at seen, which would leave the link
	// idle for everyone until then; it leaves as soon as it is sent.
	start, end := s.pipe.book(end, float64(lost*PacketSize))
	again := seen.Add(end.Sub(start))
	if s.win != nil {
		s.win.lost(seen, again.Add(rtt))
	}
	return again.Add(rtt / 2), again.Add(rtt)
}

// A costing says what a stream's bytes cost on its link.
type costing uint8

const (
	// bytesOnly: each byte costs a byte.
	bytesOnly costing = iota
	// segmentHeaders: each segment of a piece carries 1448 bytes of
	// payload in a packet of 1500.
	segmentHeaders
	// wholePackets: a stream takes throughput in whole packets of 1500
	// bytes, the last one whole too, as DevTools counts a response.
	wholePackets
)

// of is what n more bytes of a stream that has booked sent cost, when they
// start p new segments.
func (c costing) of(sent, n, p int) float64 {
	switch c {
	case segmentHeaders:
		return float64(n + p*(PacketSize-SegmentSize))
	case wholePackets:
		packets := func(b int) int { return (b + PacketSize - 1) / PacketSize }
		return float64((packets(sent+n) - packets(sent)) * PacketSize)
	}
	return float64(n)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Links holds the Links of clients, one per key (a client's address, or a
// share key) and Network, so that all of a client's connections and
// requests go through one link. A link is made when its key is first used
// and forgotten once no exchange uses it and it has carried all that was
// booked on it, when forgetting it changes nothing; at most max idle links
// are held (see pool). It is safe for concurrent use.
type Links struct {
	pool[linkKey, *Link]
}

type linkKey struct {
	key  string
	name string  // a named network's: its links are its clients', whatever its conditions
	net  Network // an unnamed network's conditions
}

// A HeldLink is a Link held in Links for the exchanges that use it.
type HeldLink = Held[linkKey, *Link]

// NewLinks returns an empty set of links that holds at most max idle ones.
func NewLinks(max int) *Links {
	return &Links{pool: newPool[linkKey](max, (*Link).drained)}
}

// Acquire returns the link under net for key, for one exchange, which must
// hand it back with Release when it ends.
func (ls *Links) Acquire(key string, net Network, now time.Time) *HeldLink {
	return ls.acquire(linkKey{key: heldKey(key), net: net}, now, func() *Link { return NewLink(net, now) })
}

// A Tally counts the payload bytes that links carry, down and up.
type Tally struct{ Down, Up atomic.Int64 }

// AcquireNamed returns the link of the network called name for key, made
// under net if it is new, and counting what it carries in tally. The link is
// the same whatever the network's conditions: changing them is
// SetNetwork's (Named finds the links).
func (ls *Links) AcquireNamed(key, name string, net Network, tally *Tally, now time.Time) *HeldLink {
	return ls.acquire(linkKey{key: heldKey(key), name: name}, now, func() *Link {
		l := NewLink(net, now)
		l.down.carried, l.up.carried = &tally.Down, &tally.Up
		return l
	})
}

// Named calls f for every link of the network called name, and for how
// many exchanges use it.
func (ls *Links) Named(name string, f func(l *Link, exchanges int)) {
	ls.each(func(k linkKey, l *Link, streams int) {
		if k.name == name {
			f(l, streams)
		}
	})
}
