package pacing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// dropping returns a random source for a pipe's loss process that loses
// exactly the packets numbered in lose (from 0), at a loss share of 1%.
func dropping(lose ...int) func() float64 {
	n := -1
	return func() float64 {
		n++
		for _, l := range lose {
			if n == l {
				return 0
			}
		}
		return 1
	}
}

func TestALossStallsTheConnectionUntilItsRetransmission(t *testing.T) {
	// 1 MB/s, 100 ms. The 35th packet is lost, in the middle of a piece of
	// the second round trip: the packets after it are acknowledged out of
	// order, so the sender sees the loss a round trip after the piece left
	// and sends the packet again. Its bytes, and all the connection sent
	// after it, arrive no sooner than the retransmission. The window halves.
	const body = 20 * InitialWindow
	lossless := &sender{lim: NewLink(Network{RTT: ms(100), Down: 1e6}, t0).Open(NewConn(t0), 1, t0).Down, left: body, wake: t0}
	simulate(lossless)
	link := NewLink(Network{RTT: ms(100), Down: 1e6, Loss: 0.01}, t0)
	link.down.random = dropping(34)
	conn := NewConn(t0)
	s := &sender{lim: link.Open(conn, 1, t0).Down, left: body, wake: t0}
	simulate(s)
	// When the lost packet's bytes arrived, and when they would have.
	arrivedBy := func(s *sender, bytes int) (time.Time, int) {
		for i, a := range s.arrivals {
			if a.total >= bytes {
				return a.at, i
			}
		}
		return time.Time{}, -1
	}
	lost, i := arrivedBy(s, 35*SegmentSize)
	would, _ := arrivedBy(lossless, 35*SegmentSize)
	if late := lost.Sub(would); late < ms(100)-time.Millisecond || late > ms(120) {
		t.Errorf("the lost packet's bytes arrived %v later than without the loss; want a round trip, 100 ms", late)
	}
	for j, a := range s.arrivals[i+1:] {
		if a.at.Before(lost) {
			t.Errorf("piece %d arrived at %v, before the retransmission it follows (%v)", i+j+2, a.at.Sub(t0), lost.Sub(t0))
		}
	}
	if conn.down.ssthresh == 0 {
		t.Error("the window did not halve")
	}
	if s.sent != body {
		t.Errorf("%d bytes sent, want %d", s.sent, body)
	}
	t.Logf("200 packets: %v without loss, %v with one", lossless.done().Sub(t0), s.done().Sub(t0))
}

func TestATailLossWaitsForAProbe(t *testing.T) {
	// A response of one packet, lost: nothing follows it to be
	// acknowledged out of order, so the sender sees the loss only after a
	// probe timeout: two round trips (here more than the least timeout).
	link := NewLink(Network{RTT: ms(150), Down: 1e6, Loss: 0.01}, t0)
	link.down.random = dropping(0)
	s := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 1000, wake: t0}
	simulate(s)
	onLink := seconds(linkCost(1000, 1000) / 1e6)
	want := t0.Add(onLink + 2*ms(150) + seconds(1500/1e6) + ms(75))
	if s.done().Sub(want).Abs() > time.Millisecond {
		t.Errorf("a lost tail packet arrived at %v, want %v", s.done().Sub(t0), want.Sub(t0))
	}
}

func TestLossesComeInBurstsAtTheSameShare(t *testing.T) {
	for _, burst := range []float64{0, 4} {
		var p pipe
		p.init(way{loss: 0.02, burst: burst}, t0, rand.New(rand.NewPCG(1, 2)).Float64)
		lost, bursts, inBurst := 0, 0, false
		const packets = 1_000_000
		for range packets {
			n, _ := p.lose(1)
			if n == 1 && !inBurst {
				bursts++
			}
			inBurst = n == 1
			lost += n
		}
		share, mean := float64(lost)/packets, float64(lost)/float64(bursts)
		t.Logf("burst %v: %.3f%% lost, %.2f packets a burst", burst, share*100, mean)
		if math.Abs(share-0.02) > 0.001 || burst > 1 && math.Abs(mean-burst) > 0.3 || burst == 0 && mean > 1.1 {
			t.Errorf("burst %v: %.3f%% lost in bursts of %.2f; want 2%% in bursts of %v", burst, share*100, mean, max(burst, 1))
		}
	}
}

func TestLossSlowsADownloadAsTCPRecovers(t *testing.T) {
	// 1 MiB over 100 ms and 8 Mbit/s: without loss, about a second; at 2%
	// loss, the window is cut every 50 packets or so and grows about half a
	// packet a round trip: TCP's recovery, not the rate, sets the time, several
	// times longer (Mathis et al.: about 1448 B / 100 ms × 1.22 / √0.02,
	// 125 KB/s: 8 s).
	times := func(loss float64) []time.Duration {
		var d []time.Duration
		for seed := range uint64(16) {
			link := NewLink(Network{RTT: ms(100), Down: 1e6, Up: 1e6, Loss: loss}, t0)
			link.down.random = rand.New(rand.NewPCG(seed, 9)).Float64
			s := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 1 << 20, wake: t0}
			simulate(s)
			d = append(d, s.done().Sub(t0))
		}
		slices.Sort(d)
		return d
	}
	lossless, lossy := times(0)[8], times(0.02)[8]
	t.Logf("1 MiB: %v without loss, %v (median of 16) at 2%%", lossless, lossy)
	if lossless > 2*time.Second || lossy < 3*lossless || lossy > 15*time.Second {
		t.Errorf("1 MiB took %v without loss and %v at 2%%", lossless, lossy)
	}
}

func TestALossyLinkCarriesWhatCUBICWould(t *testing.T) {
	// A link with room to spare (10 MB/s, 100 ms: a window of 690 packets)
	// losing 1% of its packets: loss, not the rate, sets the throughput.
	// CUBIC carries at least what Reno would (Mathis et al.'s 1.22 /
	// sqrt(p) packets a round trip, 1448 x 12.2 / 100 ms = 177 KB/s: its
	// Reno-friendly region), and somewhat more where its curve comes back
	// faster than Reno between losses; but well under what a window growing
	// a packet a round trip carries (1.68 / sqrt(p), 38% more than Reno,
	// and 44% more in this test), which is what this model did at first.
	const loss, size = 0.01, 8 << 20
	var total time.Duration
	for seed := range uint64(8) {
		link := NewLink(Network{RTT: ms(100), Down: 1e7, Up: 1e7, Loss: loss}, t0)
		link.down.random = rand.New(rand.NewPCG(seed, 3)).Float64
		s := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: size, wake: t0}
		simulate(s)
		total += s.done().Sub(t0)
	}
	got := 8 * size / total.Seconds()
	reno := SegmentSize * 1.22 / math.Sqrt(loss) / 0.1
	t.Logf("%.0f B/s at 1%% loss; Reno (Mathis et al.) %.0f B/s: %+.1f%%", got, reno, (got/reno-1)*100)
	if got < reno || got > 1.3*reno {
		t.Errorf("a lossy link carried %.0f B/s; CUBIC carries from Reno's %.0f B/s to 30%% more at 1%% loss", got, reno)
	}
}
