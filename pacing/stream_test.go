package pacing

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

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
	s.idle(time.Second, t0)
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
