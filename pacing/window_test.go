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
