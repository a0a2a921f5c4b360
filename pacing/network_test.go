package pacing

import (
	"context"
	"testing"
	"time"
)

// A sender is one Pacer in a simulation: it sends its bytes through a
// Limiter as a Pacer does, piece by piece, waiting for the window to open
// and then for each piece's arrival, with a source that is always ready.
type sender struct {
	lim      Limiter
	left     int
	wake     time.Time
	sent     int
	arrivals []arrival
	waiting  int // bytes booked whose arrival it waits for
}

type arrival struct {
	at    time.Time
	total int // bytes arrived by then
}

// simulate runs senders as concurrent Pacers on a fake clock, the one that
// wakes first going first, until each has sent all its bytes.
func simulate(senders ...*sender) {
	simulateUntil(time.Time{}, senders...)
}

// simulateUntil is simulate that stops before any sender wakes after until
// (never, if zero), to be called again to go on.
func simulateUntil(until time.Time, senders ...*sender) {
	for {
		var s *sender
		for _, c := range senders {
			if (c.left > 0 || c.waiting > 0) && (s == nil || c.wake.Before(s.wake)) {
				s = c
			}
		}
		if s == nil || !until.IsZero() && s.wake.After(until) {
			return
		}
		now := s.wake
		if s.waiting > 0 {
			// Its piece is due: through a queue, a piece sent before it
			// may have pushed it on.
			if st, ok := s.lim.(settler); ok {
				if d := st.settle(now); d > 0 {
					s.wake = now.Add(d)
					continue
				}
			}
			s.sent += s.waiting
			s.waiting = 0
			s.arrivals = append(s.arrivals, arrival{now, s.sent})
			continue
		}
		n := min(s.left, s.lim.Burst())
		if o, ok := s.lim.(opener); ok {
			if d := o.Open(now, n); d > 0 {
				s.wake = now.Add(d)
				continue
			}
		}
		if a, ok := s.lim.(aheader); ok {
			a.ahead(s.left - n) // as a Pacer with all the bytes in one Write
		}
		s.wake = now.Add(s.lim.Reserve(now, n))
		s.left -= n
		s.waiting = n
	}
}

// by returns how many of its bytes had arrived by t.
func (s *sender) by(t time.Time) int {
	total := 0
	for _, a := range s.arrivals {
		if !a.at.After(t) {
			total = a.total
		}
	}
	return total
}

func (s *sender) done() time.Time { return s.arrivals[len(s.arrivals)-1].at }

// linkCost is what n bytes of payload cost on a link in pieces of piece
// bytes: each segment of a piece carries 52 bytes of headers.
func linkCost(n, piece int) float64 {
	cost := 0
	for n > 0 {
		p := min(n, piece)
		cost += p + (p+SegmentSize-1)/SegmentSize*(PacketSize-SegmentSize)
		n -= p
	}
	return float64(cost)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestANewConnectionPaysItsHandshakesAndEveryRequestARoundTrip(t *testing.T) {
	net := Network{RTT: ms(100), Down: 1e6, Up: 1e6}
	link := NewLink(net, t0)
	clock := &fakeClock{now: t0}
	ctx := context.Background()
	// exchange sends a request of 500 bytes of head on conn, and returns
	// when it reached the server and when a 200-byte response head reached
	// the client.
	exchange := func(conn *Conn, handshakes int) (arrived, head time.Duration) {
		start := clock.now
		x := link.Open(conn, handshakes, start)
		Await(ctx, clock, x.Up, 500, time.Time{})
		arrived = clock.now.Sub(start)
		Await(ctx, clock, x.Down, 200, time.Time{})
		return arrived, clock.now.Sub(start)
	}
	up, down := ms(50)+seconds(552e-6), ms(50)+seconds(252e-6) // half the RTT, and the bytes on the link
	// TLS's first flights, on the link each way
	flights := seconds((linkCost(TLSClientFlight, TLSClientFlight) + linkCost(TLSServerFlight, TLSServerFlight)) / 1e6)
	for _, tc := range []struct {
		name       string
		conn       *Conn
		handshakes int
		arrived    time.Duration
	}{
		{"a new TLS 1.3 connection: TCP and TLS, 2 RTT and TLS's flights", NewConn(t0), 2, ms(200) + flights + up},
		{"the same connection, reused", nil, 0, up},
		{"a new TLS 1.2 connection: 3 RTT and TLS's flights", NewConn(t0.Add(2 * time.Second)), 3, ms(300) + flights + up},
		{"a new plain TCP connection: 1 RTT", NewConn(t0.Add(4 * time.Second)), 1, ms(100) + up},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := tc.conn
			if conn == nil { // reuse the first connection, a second later
				conn = NewConn(t0)
				link.Open(conn, 2, t0)
				clock.now = t0.Add(time.Second)
			} else {
				clock.now = conn.opened
			}
			arrived, head := exchange(conn, tc.handshakes)
			if arrived != tc.arrived || head != tc.arrived+down {
				t.Errorf("the request arrived after %v and the head after %v; want %v and %v", arrived, head, tc.arrived, tc.arrived+down)
			}
		})
	}
}

func TestALinksConditionsChangeForItsStreamsInFlight(t *testing.T) {
	// A download at 100,000 B/s; at 2 s the link goes to 1,000,000 B/s and
	// a round trip of 20 ms: the next pieces come ten times as fast.
	link := NewLink(Network{RTT: ms(100), Down: 100_000}, t0)
	s := &sender{lim: link.Open(nil, 0, t0).Down, left: 1_000_000, wake: t0}
	simulateUntil(t0.Add(2*time.Second), s)
	link.SetNetwork(Network{RTT: ms(20), Down: 1_000_000}, t0.Add(2*time.Second))
	simulate(s)
	rate := func(from, to time.Duration) float64 {
		return float64(s.by(t0.Add(to))-s.by(t0.Add(from))) / (to - from).Seconds()
	}
	slow, fast := rate(500*time.Millisecond, 1900*time.Millisecond), rate(2200*time.Millisecond, 2800*time.Millisecond)
	t.Logf("%.0f B/s before the change, %.0f B/s after", slow, fast)
	if slow > 100_000 || slow < 90_000 || fast > 1_000_000 || fast < 900_000 {
		t.Errorf("%.0f B/s before and %.0f after, want the link's payload rates, 96,533 and 965,333", slow, fast)
	}
}

func TestAnOfflineLinkStallsItsStreamsAndResumes(t *testing.T) {
	// Offline from 1 s to 3 s: nothing arrives in between (but the pieces
	// already on their way), and the download goes on within a poll of
	// the link coming back, with nothing lost.
	net := Network{RTT: ms(100), Down: 100_000}
	link := NewLink(net, t0)
	s := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 400_000, wake: t0}
	simulateUntil(t0.Add(time.Second), s)
	offline := net
	offline.Offline = true
	link.SetNetwork(offline, t0.Add(time.Second))
	simulateUntil(t0.Add(3*time.Second), s)
	during := s.by(t0.Add(3*time.Second)) - s.by(t0.Add(time.Second+ms(100)))
	link.SetNetwork(net, t0.Add(3*time.Second))
	simulate(s)
	if during != 0 {
		t.Errorf("%d bytes arrived while the link was offline", during)
	}
	if next := s.by(t0.Add(3*time.Second + offlinePoll + ms(100))); next == s.by(t0.Add(3*time.Second)) {
		t.Errorf("nothing arrived within %v of the link coming back", offlinePoll+ms(100))
	}
	if s.sent != 400_000 {
		t.Errorf("%d bytes sent, want 400,000", s.sent)
	}
}

func TestAQUICConnectionPaysOneRoundTripOfHandshakeAndStartsAt32Packets(t *testing.T) {
	// HTTP/3: the client's TLS flight goes at once, with no TCP handshake
	// before it, and the request with its Finished: the request arrives a
	// round trip and TLS's flights after the connection's first packet, and
	// the head half a round trip later. A TCP connection with TLS 1.3 pays
	// a round trip more.
	net := Network{RTT: ms(100), Down: 1e6, Up: 1e6}
	flights := seconds((linkCost(TLSClientFlight, TLSClientFlight) + linkCost(TLSServerFlight, TLSServerFlight)) / 1e6)
	up := ms(50) + seconds(552e-6)
	for _, tc := range []struct {
		name    string
		conn    *Conn
		arrived time.Duration
	}{
		{"QUIC", NewQUICConn(t0), ms(100) + flights + up},
		{"TCP with TLS 1.3", NewConn(t0), ms(200) + flights + up},
	} {
		link := NewLink(net, t0)
		clock := &fakeClock{now: t0}
		x := link.Open(tc.conn, 2-bool2int(tc.conn.quic), t0)
		Await(context.Background(), clock, x.Up, 500, time.Time{})
		if got := clock.now.Sub(t0); got != tc.arrived {
			t.Errorf("%s: the first request arrived after %v, want %v", tc.name, got, tc.arrived)
		}
	}

	// Its window starts at 32 packets of 1280 bytes, 27 of the link's: a
	// download's first round trip carries about 27 segments, a TCP
	// connection's 10.
	var first [2]int
	for i, conn := range []*Conn{NewQUICConn(t0), NewConn(t0)} {
		link := NewLink(Network{RTT: ms(100), Down: 10e6}, t0)
		x := link.Open(conn, 1, t0)
		s := &sender{lim: x.Down, left: 1_000_000, wake: x.Up.next}
		simulate(s)
		first[i] = s.by(s.arrivals[0].at.Add(ms(95))) / SegmentSize
	}
	t.Logf("the first round trip carried %d segments over QUIC and %d over TCP", first[0], first[1])
	if first[0] < quicInitialPackets-2 || first[0] > quicInitialPackets+2 || first[1] != initialPackets {
		t.Errorf("the first round trip carried %d segments over QUIC and %d over TCP, want about %d and %d", first[0], first[1], quicInitialPackets, initialPackets)
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}
