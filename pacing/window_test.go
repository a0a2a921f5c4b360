package pacing

import (
	"math"
	"testing"
	"time"
)

// afterALoss cuts a used window of w packets at t0 and acknowledges a
// window's worth of packets every round trip of rtt until it has run for d,
// and returns the window then.
func afterALoss(w float64, rtt, d time.Duration) float64 {
	win := window{cwnd: w, peak: int(w), rtt: rtt, ssthresh: w}
	win.lost(t0, t0)
	for t := t0; t.Before(t0.Add(d)); t = t.Add(time.Duration(float64(rtt) / win.cwnd)) {
		win.grow(1, t)
	}
	return win.cwnd
}

func TestAfterALossABigWindowComesBackAlongCUBICsCurve(t *testing.T) {
	// A window of 100 packets cut to 70 comes back towards 100 along
	// 0.4 (t - K)^3 + 100, K = cbrt(30 / 0.4) = 4.2 s: 88 a second on (the
	// curve a round trip ahead), about 100 at K, and beyond it after. Reno,
	// half a packet a round trip, would be at 75 a second on.
	const rtt = 100 * time.Millisecond
	k := math.Cbrt(30 / cubicC)
	curve := func(s float64) float64 { return 100 + cubicC*math.Pow(s+rtt.Seconds()-k, 3) }
	for _, at := range []float64{1, k, 6} {
		got := afterALoss(100, rtt, time.Duration(at*float64(time.Second)))
		if want := curve(at); math.Abs(got-want) > 1.5 {
			t.Errorf("%.1f s after a cut from 100 packets, the window is %.1f; CUBIC's curve says %.1f", at, got, want)
		}
	}
}

func TestAfterALossASmallWindowGrowsAsRenoWould(t *testing.T) {
	// A window of 10 cut to 7: CUBIC's curve comes back to 10 only in
	// K = 2 s, slower than Reno, so the window grows as Reno's would, by
	// 3 x 0.3 / 1.7 = 0.53 packet a round trip (RFC 9438's Reno-friendly
	// region): 9.6 after 5 round trips, where the curve is at 9.0.
	const rtt = 100 * time.Millisecond
	got := afterALoss(10, rtt, 5*rtt)
	if want := 7 + 5*renoFriendly; math.Abs(got-want) > 0.2 {
		t.Errorf("5 round trips after a cut from 10 packets, the window is %.2f; Reno's would be %.2f", got, want)
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

func TestHyStartEndsSlowStartAsTheQueueFills(t *testing.T) {
	// Round trips of 150 ms while the queue is empty, then 170 ms: above
	// the least by more than 16 ms (an eighth of 150, at most 16), slow
	// start ends at the round's eighth sample, once the window holds 16
	// packets; a window of 10 goes on doubling.
	for _, tc := range []struct {
		cwnd float64
		rise time.Duration
		ends bool
	}{{32, 20 * time.Millisecond, true}, {32, 10 * time.Millisecond, false}, {10, 20 * time.Millisecond, false}} {
		w := window{cwnd: tc.cwnd}
		// A round is the acknowledgements of the packets out when it
		// began: these, sent a millisecond apart, while the sender has
		// sent up to 500 ms, then 2 s.
		w.lastSent = t0.Add(500 * time.Millisecond)
		for i := range 8 {
			sent := t0.Add(time.Duration(i) * time.Millisecond)
			w.sample(sent, sent.Add(150*time.Millisecond))
		}
		w.lastSent = t0.Add(2 * time.Second)
		for i := range 8 {
			sent := t0.Add(501*time.Millisecond + time.Duration(i)*time.Millisecond)
			w.sample(sent, sent.Add(150*time.Millisecond+tc.rise))
		}
		if ended := w.ssthresh != 0; ended != tc.ends {
			t.Errorf("a window of %.0f, round trips up by %v: slow start ended %v, want %v", tc.cwnd, tc.rise, ended, tc.ends)
		}
	}
}

func TestAfterHyStartAWindowThatHasLostNothingGrowsATwentiethARoundTrip(t *testing.T) {
	// Slow start ended by HyStart at 30 packets, with no loss: the rate is
	// still unknown, so the window grows by at least a packet for every 20
	// acknowledged (5% a round trip), as Linux's CUBIC does, where the
	// curve from 30 would add 0.4 t^3 (0.4 packet in the first second) and
	// Reno one a round trip. After 20 round trips of 100 ms, at least
	// 30 × 1.05^20 = 80 packets. After a loss the floor is gone.
	const rtt = 100 * time.Millisecond
	grow := func(win *window, rounds int) {
		at := t0
		for range rounds {
			n := int(win.cwnd)
			for range n {
				at = at.Add(rtt / time.Duration(n))
				win.grow(1, at)
			}
		}
	}
	w := window{cwnd: 30, ssthresh: 30, peak: 1000, rtt: rtt}
	grow(&w, 20)
	if w.cwnd < 30*math.Pow(1.05, 20)*0.97 {
		t.Errorf("20 round trips after HyStart the window is %.1f packets, want at least %.1f", w.cwnd, 30*math.Pow(1.05, 20))
	}
	lost := window{cwnd: 30, ssthresh: 30, peak: 1000, rtt: rtt, wMax: 40}
	grow(&lost, 20)
	if lost.cwnd > 50 {
		t.Errorf("20 round trips on from a loss at 40 packets, the window is %.1f: it grew as if it had lost nothing", lost.cwnd)
	}
}
