package pacing

import (
	"math"
	"time"
)

// devToolsPiece is what a Stream books at once under DevToolsModel: 10 ms
// of the rate in whole packets, at least one. DevTools hands its throughput
// out a packet at a time, in turn.
func devToolsPiece(rate float64) int {
	return int(max(math.Floor(rate*0.01/PacketSize), 1)) * PacketSize
}

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
	// Through a queue, when its next piece may be sent: with its last one,
	// if the window lets it, or when its source handed it over.
	next    time.Time
	arrived time.Time // when its last piece arrived
	after   int       // bytes the source has handed over after the piece being booked
	riding  int       // bytes to book with the next piece (Ride)
	// Through a queue: the booking that its last piece's arrival waits
	// for, and when that booking ended as of Reserve, so that settle sees
	// how far a piece sent earlier pushed it on.
	queued    *booking
	queuedEnd time.Time
	// hs is the handshake of a new connection through queues, which its
	// first request waits for, as pieces sent before its packets push it
	// on; nil once the request has gone, and without queues.
	hs *handshake
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

// idle moves the stream's next piece on by d, the time its source took
// until now: a source that pauses earns no credit on the link. Through a
// queue, the bytes it handed over at now were sent no sooner (now is the
// client's time: the server's is half a round trip before).
func (s *Stream) idle(d time.Duration, now time.Time) {
	if d >= minIdle && !s.next.IsZero() {
		if _, queued := s.pipe.longestWait(); queued {
			s.next = later(s.next, now.Add(-s.delay()))
		} else {
			s.next = s.next.Add(d)
		}
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

// maxCatchUp bounds how far a link's stream books its next piece before
// its time when its Pacer ran late, so that it catches up.
const maxCatchUp = time.Second

// minIdle is the shortest pause of a source that the link sees: a server's
// socket buffer hides shorter ones, such as the time a handler takes to
// read its next block of a file.
const minIdle = 2 * time.Millisecond

// ready is when the stream's next piece, due at now, may start on the link:
// where its last piece ended, or if it fell behind (its Pacer ran late, and
// its piece arrives later than the link would have carried it) at most
// maxCatchUp before its time, so that it catches up. Through a queue
// (wait is how long it holds at most), when it may be sent: as far back as
// its wait, since the stream's Pacer learns that its last piece arrived
// only once it has.
func (s *Stream) ready(now time.Time, wait time.Duration) time.Time {
	if s.next.IsZero() {
		s.next = now
	}
	return later(s.next, now.Add(-s.delay()-maxCatchUp-wait))
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
	wait, _ := s.pipe.longestWait()
	s.settleHandshake()
	s.conn.mu.Lock()
	t := s.win.open(s.ready(now, wait), s.segments(n+s.riding), s.rtt())
	s.conn.mu.Unlock()
	return max(t.Add(s.delay()).Sub(now), 0)
}

// offlinePoll is how often a stream on an offline link looks whether it is
// back: within this of a change, it goes on.
const offlinePoll = 50 * time.Millisecond

// Reserve books n bytes (at most Burst) due at now and returns how long to
// wait until they have arrived.
func (s *Stream) Reserve(now time.Time, n int) time.Duration {
	if wait, queued := s.pipe.longestWait(); queued {
		return s.reserveQueued(now, n, wait)
	}
	ready := s.ready(now, 0)
	rtt, delay := s.rtt(), s.delay()
	n, s.riding = n+s.riding, 0 // a head riding with this piece, in its packets
	p := s.segments(n)
	cost := s.cost.of(s.sent, n, p)
	s.sent += n
	s.open = (s.open + n) % SegmentSize
	s.pipe.count(n)
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

// reserveQueued is Reserve through the link's queue, which holds at most
// wait: the piece is sent when the window lets it, joins the queue behind
// what was sent before it (a drop-tail queue drops what does not fit), and
// arrives once the link has carried it and half a round trip later.
func (s *Stream) reserveQueued(now time.Time, n int, wait time.Duration) time.Duration {
	rtt, delay := s.rtt(), s.delay()
	back := delay + maxCatchUp + wait
	if s.hs != nil {
		s.settleHandshake()
		s.conn.hsMu.Lock()
		s.conn.queued = nil // later exchanges find the handshake done
		s.conn.hsMu.Unlock()
		s.hs = nil
	}
	ready := s.ready(now, wait)
	n, s.riding = n+s.riding, 0
	p := s.segments(n)
	cost := s.cost.of(s.sent, n, p)
	s.sent += n
	s.open = (s.open + n) % SegmentSize
	s.pipe.count(n)
	if s.win != nil {
		s.conn.mu.Lock()
		defer s.conn.mu.Unlock()
		ready = s.win.open(ready, p, rtt)
	}
	fresh := ready.After(now.Add(-delay - 2*minIdle)) // sent as it is booked, not learnt of late
	b, dropped := s.pipe.enqueue(now, ready, cost, p, false, back, fresh)
	end := ready
	if b != nil {
		end = b.endTime()
	}
	s.queued, s.queuedEnd = b, end
	arrived := end.Add(delay)
	lost, first := s.pipe.lose(p - dropped)
	if lost == 0 {
		first = p - dropped
	}
	lost += dropped
	var resent time.Time
	if lost > 0 {
		arrived, resent = s.recoverQueued(now, end, s.tail(n, p, first), lost, rtt, back)
	}
	if s.win != nil {
		s.win.sentQueued(ready, b, p, lost, resent)
		arrived = later(arrived, s.win.blocked)
		if lost > 0 {
			s.win.blocked = arrived
		}
		s.next = ready // the next piece goes with this one, if the window lets it
	} else {
		s.next = end // with no window, once this one is carried
	}
	s.arrived = arrived
	return max(s.arrived.Sub(now), 0).Round(time.Microsecond)
}

// recoverQueued is recover through the queue: the lost packets are sent
// again when the sender sees the loss, and join the queue then.
func (s *Stream) recoverQueued(now, end time.Time, tail bool, lost int, rtt, back time.Duration) (arrived, acked time.Time) {
	seen := end.Add(rtt)
	if tail {
		// The probe waits two round trips as the connection has seen
		// them: through a queue, longer than the link's.
		srtt := rtt
		if s.win != nil && s.win.srtt > rtt {
			srtt = s.win.srtt
		}
		seen = end.Add(max(2*srtt, minRTO))
	}
	b, _ := s.pipe.enqueue(now, seen, float64(lost*PacketSize), lost, true, back, false)
	again := b.endTime()
	s.queued, s.queuedEnd = b, again
	if s.win != nil {
		s.win.lost(seen, again.Add(rtt))
	}
	return again.Add(rtt / 2), again.Add(rtt)
}

// settleHandshake has the stream's next piece wait for its connection's
// handshake as it stands now, if it is the request that waits for one.
func (s *Stream) settleHandshake() {
	if s.hs != nil {
		s.conn.hsMu.Lock()
		done := s.hs.settle()
		s.conn.hsMu.Unlock()
		s.next = later(s.next, done)
	}
}

// settle returns how long to wait, at now, until the last piece Reserve
// booked has arrived: longer than Reserve said if a piece sent before it,
// but booked after it, pushed it on in the queue.
func (s *Stream) settle(now time.Time) time.Duration {
	if s.queued != nil {
		if end := s.queued.endTime(); end.After(s.queuedEnd) {
			s.arrived = s.arrived.Add(end.Sub(s.queuedEnd))
			s.queuedEnd = end
		}
	}
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
