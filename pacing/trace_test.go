package pacing

import (
	"fmt"
	"math"
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

// pieceDuration is how long a piece takes at rate.
func pieceDuration(rate float64) time.Duration {
	return seconds(linkCost(PieceSize(rate), PieceSize(rate)) / rate)
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
