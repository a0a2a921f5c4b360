package pacing

import (
	"context"
	"fmt"
	"math"
	"strings"
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
			if c.left > 0 && (s == nil || c.wake.Before(s.wake)) {
				s = c
			}
		}
		if s == nil || !until.IsZero() && s.wake.After(until) {
			return
		}
		now, n := s.wake, min(s.left, s.lim.Burst())
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
		s.sent += n
		s.arrivals = append(s.arrivals, arrival{s.wake, s.sent})
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

func TestTheWindowCountsPackets(t *testing.T) {
	// 40 requests of 100 bytes, each written on its own, take 40 packets
	// of a new connection's window of 10: they go in 3 round trips (10,
	// 20, then 10 more), as a TCP sender sends them, not in one.
	link := NewLink(Network{RTT: ms(100), Up: 1e6}, t0)
	conn := NewConn(t0)
	var requests []*sender
	for range 40 {
		requests = append(requests, &sender{lim: link.Open(conn, 1, t0).Up, left: 100, wake: t0.Add(ms(100))})
	}
	simulate(requests...)
	rounds := map[time.Duration]int{}
	for _, r := range requests {
		rounds[r.done().Sub(t0).Truncate(ms(100))]++
	}
	if rounds[ms(100)] != 10 || rounds[ms(200)] != 20 || rounds[ms(300)] != 10 {
		t.Errorf("requests arrived by round trip: %v; want 10, 20, 10", rounds)
	}
}

func TestSlowStartDoublesTheWindowEveryRoundTrip(t *testing.T) {
	// No rate limit, so only the window paces: 10 segments in the first
	// round trip, then 20, 40, 80.
	link := NewLink(Network{RTT: ms(100)}, t0)
	x := link.Open(NewConn(t0), 1, t0)
	s := &sender{lim: x.Down, left: 15 * InitialWindow, wake: t0}
	simulate(s)
	for _, round := range []struct {
		at     time.Duration
		rounds int // windows arrived: 1, 3, 7, 15
	}{{ms(50), 1}, {ms(149), 1}, {ms(150), 3}, {ms(250), 7}, {ms(350), 15}} {
		if got, want := s.by(t0.Add(round.at)), round.rounds*InitialWindow; got != want {
			t.Errorf("by %v, %d bytes arrived; want %d", round.at, got, want)
		}
	}
}

func TestSlowStartStartsAgainAfterIdling(t *testing.T) {
	// A connection that has grown its window keeps it over a pause shorter
	// than a retransmission timeout (RTT + 200 ms), and halves it for each
	// one it idles.
	const rtt = 100 * time.Millisecond
	for _, tc := range []struct {
		pause time.Duration
		cwnd  int
	}{{ms(299), 160}, {ms(300), 80}, {ms(900), 20}, {time.Minute, 10}} {
		link := NewLink(Network{RTT: rtt}, t0)
		conn := NewConn(t0)
		s := &sender{lim: link.Open(conn, 1, t0).Down, left: 15 * InitialWindow, wake: t0}
		simulate(s)
		// Last sent at 300 ms (the 4th round), acknowledged at 400 ms:
		// the window is 160 packets.
		at := t0.Add(ms(300) + tc.pause)
		conn.down.open(at, 1, rtt)
		if conn.down.cwnd != float64(tc.cwnd) {
			t.Errorf("after a pause of %v the window is %v packets; want %d", tc.pause, conn.down.cwnd, tc.cwnd)
		}
	}
}

func TestALinkCarriesItsRawRate(t *testing.T) {
	// 1 MB down at 1 MB/s of link, with no round trip to wait for: each
	// 1500-byte packet carries 1448 bytes, so it takes 3.6% longer.
	const body = 1_000_000
	link := NewLink(Network{Down: 1e6}, t0)
	s := &sender{lim: link.Open(nil, 0, t0).Down, left: body, wake: t0}
	simulate(s)
	want := seconds(linkCost(body, PieceSize(1e6)) / 1e6)
	if got := s.done().Sub(t0); got < want-time.Microsecond || got > want+time.Millisecond {
		t.Errorf("1 MB took %v, want %v", got, want)
	}
	if want < seconds(1.035) || want > seconds(1.037) {
		t.Errorf("1 MB costs %v of a 1 MB/s link, want 1500/1448 s", want)
	}
}

func TestAPacedBodyFillsWholePacketsHoweverItsSourceIsRead(t *testing.T) {
	// 100 KiB through a Pacer on a 51,200 B/s link whose pieces are one
	// segment each, read from its source in blocks of 2 KiB (ReadFrom's
	// buffer), so that most pieces come in two writes: the bytes still fill
	// whole packets, 1448 in each 1500, and the body takes the link's time
	// for them, not a packet's header more for every write.
	const body, rate = 100 << 10, 51200
	clock := &fakeClock{now: t0}
	link := NewLink(Network{RTT: ms(20), Down: rate, Up: rate}, t0)
	x := link.Open(NewConn(t0), 1, t0)
	rec := &recorder{clock: clock}
	p := NewPacer(context.Background(), rec, rec.flush, Plan{Shared: x.Down, Chunk: ChunkSize{N: PieceSize(rate), Unit: Bytes}}, clock)
	if _, err := p.ReadFrom(strings.NewReader(strings.Repeat("x", body))); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// From the first packet's arrival to the last's: all but the first.
	got := rec.flushes[len(rec.flushes)-1].at - rec.flushes[0].at
	want := seconds(linkCost(body-SegmentSize, SegmentSize) / rate)
	if got < want-ms(1) || got > want+ms(1) {
		t.Errorf("100 KiB took %v from its first packet to its last, want %v (%d writes)", got, want, len(rec.events))
	}
}

func TestStreamsOfOneClientShareItsLinkFairly(t *testing.T) {
	// Two downloads of 200 KB from one client, over two connections of a
	// 100 KB/s, 50 ms link, and a third client alone on its own link.
	net := Network{RTT: ms(50), Down: 100_000, Up: 100_000}
	links := NewLinks(100)
	one, other := links.Acquire("10.0.0.1", net, t0), links.Acquire("10.0.0.2", net, t0)
	a := &sender{lim: one.Value.Open(NewConn(t0), 1, t0).Down, left: 200_000, wake: t0}
	b := &sender{lim: one.Value.Open(NewConn(t0), 1, t0).Down, left: 200_000, wake: t0}
	c := &sender{lim: other.Value.Open(NewConn(t0), 1, t0).Down, left: 200_000, wake: t0}
	simulate(a, b, c)
	mid := t0.Add(2 * time.Second)
	t.Logf("after 2 s: %d and %d bytes on the shared link, %d alone", a.by(mid), b.by(mid), c.by(mid))
	if ratio := float64(a.by(mid)) / float64(b.by(mid)); ratio < 0.95 || ratio > 1.05 {
		t.Errorf("the two downloads got %d and %d bytes by 2 s: not within 5%% of each other", a.by(mid), b.by(mid))
	}
	// Together they fill the link: 400 KB of payload at 100 KB/s of link.
	together := seconds(linkCost(400_000, PieceSize(100_000)) / 100_000)
	if last := later(a.done(), b.done()).Sub(t0); last < together || last > together+ms(100) {
		t.Errorf("both were done after %v; the link carries them in %v", last, together)
	}
	if alone := c.done().Sub(t0); alone > together/2+ms(100) {
		t.Errorf("the client alone on its link took %v, want about %v", alone, together/2)
	}
}

func TestAnUploadAndADownloadDoNotSlowEachOther(t *testing.T) {
	net := Network{RTT: ms(50), Down: 100_000, Up: 50_000}
	alone := func(up bool) time.Duration {
		x := NewLink(net, t0).Open(NewConn(t0), 1, t0)
		s := &sender{lim: x.Down, left: 100_000, wake: t0}
		if up {
			s.lim = x.Up
		}
		simulate(s)
		return s.done().Sub(t0)
	}
	x := NewLink(net, t0).Open(NewConn(t0), 1, t0)
	down := &sender{lim: x.Down, left: 100_000, wake: t0}
	up := &sender{lim: x.Up, left: 100_000, wake: t0}
	simulate(down, up)
	if down.done().Sub(t0) != alone(false) || up.done().Sub(t0) != alone(true) {
		t.Errorf("at once, the download took %v and the upload %v; alone %v and %v",
			down.done().Sub(t0), up.done().Sub(t0), alone(false), alone(true))
	}
}

func TestAConnectionInSlowStartHoldsNoPlaceOnTheLink(t *testing.T) {
	// A download b fills a 100 KB/s link with a 400 ms RTT; a second one, a,
	// starts 3 s later on a new connection, whose window lets only 10
	// segments into flight a round trip at first. While a waits for its
	// acknowledgements, b goes on: a books its next piece on the link only
	// once its window lets it go, and the link never idles. So b is done
	// exactly as much later than alone as a's bytes take on the link.
	net := Network{RTT: ms(400), Down: 100_000}
	alone := &sender{lim: NewLink(net, t0).Open(NewConn(t0), 1, t0).Down, left: 600_000, wake: t0}
	simulate(alone)
	link := NewLink(net, t0)
	b := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 600_000, wake: t0}
	a := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 100_000, wake: t0.Add(3 * time.Second)}
	simulate(a, b)
	want := alone.done().Add(seconds(linkCost(100_000, PieceSize(100_000)) / 100_000))
	if got := later(a.done(), b.done()); got.Sub(want).Abs() > ms(1) {
		t.Errorf("both were done at %v; b alone at %v, and a's bytes take %v more", got.Sub(t0), alone.done().Sub(t0), want.Sub(alone.done()))
	}
}

func TestAStreamThatFellBehindCatchesUp(t *testing.T) {
	// A Pacer that wakes 300 ms late once sends its next pieces at once
	// until it is back where the link would have it: the body takes as
	// long as on time.
	net := Network{RTT: ms(100), Down: 100_000}
	onTime := &sender{lim: NewLink(net, t0).Open(nil, 0, t0).Down, left: 300_000, wake: t0}
	simulate(onTime)
	late := &sender{lim: NewLink(net, t0).Open(nil, 0, t0).Down, left: 300_000, wake: t0}
	for late.left > 0 {
		if len(late.arrivals) == 20 {
			late.wake = late.wake.Add(ms(300))
		}
		n := min(late.left, late.lim.Burst())
		late.wake = late.wake.Add(late.lim.Reserve(late.wake, n))
		late.left -= n
		late.sent += n
		late.arrivals = append(late.arrivals, arrival{late.wake, late.sent})
	}
	if got, want := late.done(), onTime.done(); got.Sub(want).Abs() > time.Millisecond {
		t.Errorf("late once by 300 ms, the body was done at %v; on time at %v", got.Sub(t0), want.Sub(t0))
	}
}

func TestASourceThatPausesEarnsNoCredit(t *testing.T) {
	// After its source paused for a second, a stream's next piece takes the
	// link's time: no burst.
	s := NewLink(Network{RTT: ms(100), Down: 100_000}, t0).Open(nil, 0, t0).Down
	n := s.Burst()
	now := t0.Add(s.Reserve(t0, n))
	now = now.Add(time.Second)
	s.idle(time.Second)
	if d, want := s.Reserve(now, n), seconds(linkCost(n, n)/100_000); d.Round(time.Microsecond) != want.Round(time.Microsecond) {
		t.Errorf("after a pause the next piece waited %v, want %v", d, want)
	}
}

func TestDevToolsModelIsALatencyFloorAndASharedThroughput(t *testing.T) {
	net := Network{Model: DevToolsModel, Latency: 562500 * time.Microsecond, Down: 180_000, Up: 84_375}
	link := NewLink(net, t0)
	// A request with no body: its head no sooner than the latency after it
	// was sent.
	x := link.Open(NewConn(t0), 2, t0)
	if got := x.HeadFloor(); got != t0.Add(562500*time.Microsecond) {
		t.Errorf("head floor %v, want 562.5 ms", got.Sub(t0))
	}
	// An upload of 84,375 bytes, 57 packets of throughput (56.25 rounded
	// up), takes 1.0133 s, and the latency counts from its end, as DevTools
	// counts it from the request's send_end.
	up := &sender{lim: x.Up, left: 84_375, wake: t0}
	simulate(up)
	if got, want := x.HeadFloor(), t0.Add(seconds(57*1500/84375.0)+562500*time.Microsecond); got.Sub(want).Abs() > time.Microsecond {
		t.Errorf("head floor after an upload %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	// Two bodies of 180,000 bytes share the throughput, with no per-packet
	// overhead and no round trips: 2 s for both.
	a := &sender{lim: link.Open(nil, 0, t0).Down, left: 180_000, wake: t0}
	b := &sender{lim: link.Open(nil, 0, t0).Down, left: 180_000, wake: t0}
	simulate(a, b)
	if last := later(a.done(), b.done()).Sub(t0); last != 2*time.Second {
		t.Errorf("two bodies took %v, want 2s", last)
	}
	if mid := t0.Add(time.Second); math.Abs(float64(a.by(mid)-b.by(mid))) > float64(a.lim.Burst()) {
		t.Errorf("by 1 s: %d and %d bytes, not fair shares", a.by(mid), b.by(mid))
	}
}

func TestLinksAreOnePerClientAndNetwork(t *testing.T) {
	links := NewLinks(100)
	slow, fast := Network{RTT: ms(150), Down: 200_000}, Network{RTT: ms(60), Down: 1_125_000}
	a := links.Acquire("10.0.0.1", slow, t0)
	b := links.Acquire("10.0.0.1", slow, t0)
	c := links.Acquire("10.0.0.1", fast, t0)
	d := links.Acquire("10.0.0.2", slow, t0)
	if a != b || a == c || a == d {
		t.Fatal("links are not one per key and network")
	}
	// A link that still has bytes to carry is kept once idle; once it has
	// carried them, it is forgotten.
	a.Value.Open(nil, 0, t0).Down.Reserve(t0, 10_000)
	for _, l := range []*HeldLink{c, d, a, b} {
		links.Release(l, t0)
	}
	if n := links.Len(); n != 1 {
		t.Fatalf("%d links held, want the one still carrying", n)
	}
	links.Release(links.Acquire("10.0.0.3", slow, t0.Add(time.Second)), t0.Add(time.Second))
	if n := links.Len(); n != 0 {
		t.Fatalf("%d links held a second later, want none", n)
	}
}

func TestANamedNetworksLinksAreOnePerClientWhateverItsConditions(t *testing.T) {
	links := NewLinks(100)
	var tally Tally
	slow, fast := Network{RTT: ms(150), Down: 200_000}, Network{RTT: ms(60), Down: 1_125_000}
	a := links.AcquireNamed("10.0.0.1", "lab", slow, &tally, t0)
	b := links.AcquireNamed("10.0.0.1", "lab", fast, &tally, t0)
	c := links.AcquireNamed("10.0.0.1", "other", slow, &tally, t0)
	d := links.Acquire("10.0.0.1", slow, t0)
	if a != b || a == c || a == d || b.Value.Network() != slow {
		t.Fatal("a named network's links are not one per client, made under the conditions of the first")
	}
	var seen []int
	links.Named("lab", func(l *Link, exchanges int) {
		if l != a.Value {
			t.Errorf("Named(lab) visited another network's link")
		}
		seen = append(seen, exchanges)
	})
	if len(seen) != 1 || seen[0] != 2 {
		t.Errorf("Named(lab) saw exchanges %v, want [2]", seen)
	}
	x := a.Value.Open(nil, 0, t0)
	x.Down.Reserve(t0, 10_000)
	x.Up.Reserve(t0, 300)
	if tally.Down.Load() != 10_000 || tally.Up.Load() != 300 {
		t.Errorf("tally %d down, %d up, want 10,000 and 300", tally.Down.Load(), tally.Up.Load())
	}
}

func TestLinksStayBoundedUnderTenThousandClients(t *testing.T) {
	const max, clients = 1000, 10000
	links := NewLinks(max)
	net := Network{RTT: ms(150), Down: 200_000, Up: 93_750}
	grown := heapGrowth(func() {
		for i := range clients {
			// Each client leaves its link with bytes still to carry.
			l := links.Acquire(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), net, t0)
			l.Value.Open(NewConn(t0), 2, t0).Down.Reserve(t0, 14480)
			links.Release(l, t0)
		}
	})
	if n := links.Len(); n > max {
		t.Fatalf("%d links held after %d clients, want at most %d", n, clients, max)
	}
	perLink := grown / int64(links.Len())
	t.Logf("%d clients left %d links, about %d bytes each", clients, links.Len(), perLink)
	if perLink > 2048 {
		t.Errorf("%d bytes a link", perLink)
	}
	// A long key costs no more than a short one.
	links.Release(links.Acquire(strings.Repeat("x", 1<<20), net, t0), t0)
	checkKeysBounded(t, &links.pool, func(k linkKey) string { return k.key })
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
