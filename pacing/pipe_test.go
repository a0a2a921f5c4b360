package pacing

import (
	"testing"
	"time"
)

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
