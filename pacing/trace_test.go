package pacing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// traceOf writes a trace in Mahimahi's format whose capacity follows rates,
// in bytes per second, each for a span: the opportunities of each
// millisecond are what the rate carries in it, the fractions carried over.
func traceOf(span time.Duration, rates ...float64) string {
	var b strings.Builder
	owed := 0.0
	ms := int64(0)
	for _, rate := range rates {
		for end := ms + span.Milliseconds(); ms < end; ms++ {
			owed += rate / 1000 / PacketSize
			for ; owed >= 1; owed-- {
				fmt.Fprintln(&b, ms+1)
			}
		}
	}
	return b.String()
}

func TestParseTrace(t *testing.T) {
	tr, err := ParseTrace(strings.NewReader("1\n1\n2\n\n4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.period != 4 || len(tr.ms) != 4 || tr.Rate() != 4*1500/0.004 {
		t.Errorf("period %d ms, %d opportunities, rate %v", tr.period, len(tr.ms), tr.Rate())
	}
	// Opportunities wrap around: the second repeat's come 4 ms later.
	for k, want := range []time.Duration{ms(1), ms(1), ms(2), ms(4), ms(5), ms(5), ms(6), ms(8)} {
		if got := tr.At(int64(k)); got != want {
			t.Errorf("opportunity %d at %v, want %v", k, got, want)
		}
	}
	for _, tc := range []struct {
		at   time.Duration
		next int64
	}{{0, 0}, {ms(1), 0}, {ms(1) + 1, 2}, {ms(3), 3}, {ms(4), 3}, {ms(4) + 1, 4}, {ms(6), 6}, {ms(41), 40}} {
		if got := tr.next(tc.at); got != tc.next {
			t.Errorf("next(%v) = %d, want %d", tc.at, got, tc.next)
		}
	}
	for _, tc := range []struct{ trace, mention string }{
		{"", "no delivery opportunities"},
		{"\n\n", "no delivery opportunities"},
		{"1\n2\nthree\n", `line 3: "three" is not a time in whole milliseconds`},
		{"5\n3\n", "line 2: 3 ms goes back from 5 ms"},
		{"1.5\n", `line 1: "1.5" is not a time`},
		{"-1\n", `line 1: "-1" is not a time`},
		{"0\n0\n", "line 2: the last time is 0 ms"},
	} {
		if _, err := ParseTrace(strings.NewReader(tc.trace)); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseTrace(%q) error %v, want one saying %q", tc.trace, err, tc.mention)
		}
	}
}

func TestADownloadFollowsItsTrace(t *testing.T) {
	// 4 MB over a link whose capacity switches between 2 and 20 Mbit/s
	// every 3 s: at every second the bytes arrived follow the trace's
	// capacity so far (less the packet headers: 1448 of every 1500) within
	// 3%, the first second too, on the link's own clock (no handshake; the
	// bytes arrive half a round trip after the trace carries them).
	src := traceOf(3*time.Second, 2e6/8, 20e6/8, 2e6/8, 20e6/8, 2e6/8, 20e6/8)
	tr, err := ParseTrace(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	link := NewLink(Network{RTT: ms(40), DownTrace: tr, Up: 1e6}, t0)
	s := &sender{lim: link.Open(NewConn(t0), 1, t0).Down, left: 4e6, wake: t0}
	simulate(s)
	capacity := func(by time.Duration) float64 { // payload the trace can carry by then
		return float64(tr.next(by)) * SegmentSize
	}
	for sec := 1; s.by(t0.Add(time.Duration(sec)*time.Second)) < 4e6; sec++ {
		at := time.Duration(sec) * time.Second
		got, want := float64(s.by(t0.Add(at))), capacity(at)
		t.Logf("by %2d s: %8.0f bytes, the trace carries %8.0f (%+.1f%%)", sec, got, want, (got/want-1)*100)
		if math.Abs(got/want-1) > 0.03 {
			t.Errorf("by %v, %.0f bytes arrived; the trace carries %.0f", at, got, want)
		}
	}
}

func TestAPieceUnderATraceTakesTheTracesRateWhereItStarts(t *testing.T) {
	// 2 Mbit/s for 1 s, then 20 Mbit/s, then nothing for 1 s: a piece is
	// what the trace carries in about 25 ms where it starts (4 segments,
	// then 10), not what its mean rate would (10 at once even in the slow
	// second, which would arrive in lumps 58 ms apart), and a single
	// segment where the trace carries nothing.
	src := traceOf(time.Second, 2e6/8, 20e6/8, 0, 2e6/8)
	tr, err := ParseTrace(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	link := NewLink(Network{RTT: ms(40), DownTrace: tr, Up: 1e6}, t0)
	down := link.Open(nil, 0, t0).Down
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 4}, {ms(500), 4}, {ms(1500), 10}, {ms(2500), 1}, {ms(3500), 4}} {
		down.Resume(t0.Add(tc.at)) // its source hands over its next bytes then
		if got := down.Burst(); got != tc.want*SegmentSize {
			t.Errorf("at %v, a piece of %d bytes, want %d segments", tc.at, got, tc.want)
		}
	}
}

func TestAnOutageStallsTheLinkAndLosesNothing(t *testing.T) {
	// 100,000 B/s; out for 2 s of every 5 s (from 3 s to 5 s, 8 s to 10 s):
	// a download of 600,000 B stalls through each outage and goes on after
	// it, taking 2 outages longer than the link's time for it.
	net := Network{Down: 100_000, Outage: 2 * time.Second, OutageEvery: 5 * time.Second}
	s := &sender{lim: NewLink(net, t0).Open(nil, 0, t0).Down, left: 600_000, wake: t0}
	simulate(s)
	if got := s.by(t0.Add(3*time.Second)) - s.by(t0.Add(3*time.Second-pieceDuration(100_000))); got == 0 {
		t.Error("nothing arrived just before the outage")
	}
	if before, after := s.by(t0.Add(3*time.Second)), s.by(t0.Add(5*time.Second-time.Millisecond)); before != after {
		t.Errorf("%d bytes arrived during the outage", after-before)
	}
	onLink := seconds(linkCost(600_000, PieceSize(100_000)) / 100_000)
	if want := t0.Add(onLink + 4*time.Second); s.done().Sub(want).Abs() > time.Millisecond {
		t.Errorf("done at %v, want %v: the link's %v and two outages of 2 s", s.done().Sub(t0), want.Sub(t0), onLink)
	}
	if s.sent != 600_000 {
		t.Errorf("%d bytes sent", s.sent)
	}
}

// pieceDuration is how long a piece takes at rate.
func pieceDuration(rate float64) time.Duration {
	return seconds(linkCost(PieceSize(rate), PieceSize(rate)) / rate)
}

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
		p := newPipe(way{loss: 0.02, burst: burst}, t0, rand.New(rand.NewPCG(1, 2)).Float64)
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

// FuzzTrace checks that any text either parses into a trace whose
// opportunities are in order and within it, or fails naming a line.
func FuzzTrace(f *testing.F) {
	for _, seed := range []string{"1\n1\n2\n4\n", "0\n", "5\n3\n", "1\nx\n", "", "\n\n7\n", "1099511627776\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tr, err := ParseTrace(strings.NewReader(src))
		if err != nil {
			if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "no delivery opportunities") && !strings.Contains(err.Error(), "too long") {
				t.Fatalf("an error that names no line: %v", err)
			}
			return
		}
		if tr.period <= 0 || tr.Rate() <= 0 {
			t.Fatalf("period %d, rate %v", tr.period, tr.Rate())
		}
		n := int64(len(tr.ms))
		for k := range 3 * n {
			if tr.At(k+1) < tr.At(k) {
				t.Fatalf("opportunity %d at %v comes before %d at %v", k+1, tr.At(k+1), k, tr.At(k))
			}
			if got := tr.next(tr.At(k)); tr.At(got) != tr.At(k) || got > k {
				t.Fatalf("next(at(%d)) = %d", k, got)
			}
		}
	})
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
