package pacing

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestNoQueueIsTheFairLinkBitForBit holds the links with no queue (the zero
// Queue, `queue fair`) to what they did before queues were modelled: the
// arrivals of a day's mix of streams (new connections with their
// handshakes, downloads sharing a link, an upload, outages, a trace),
// replayed as the Pacers of that time did, have the same digest, to the
// nanosecond, as at commit 2b15aae.
func TestNoQueueIsTheFairLinkBitForBit(t *testing.T) {
	trace, err := ParseTrace(strings.NewReader(traceOf(3*time.Second, 2e6/8, 20e6/8)))
	if err != nil {
		t.Fatal(err)
	}
	var arrivals []time.Duration
	for _, net := range []Network{
		{RTT: ms(100), Down: 500_000, Up: 100_000, Outage: time.Second, OutageEvery: 4 * time.Second},
		{RTT: ms(40), DownTrace: trace, Up: 200_000},
		{Model: DevToolsModel, Latency: ms(562), Down: 180_000, Up: 84_375},
	} {
		link := NewLink(net, t0)
		a, b := NewConn(t0), NewConn(t0.Add(ms(30)))
		x1, x2, x3 := link.Open(a, 2, t0), link.Open(b, 3, t0.Add(ms(30))), link.Open(a, 2, t0.Add(ms(500)))
		up := link.Open(b, 3, t0.Add(ms(700)))
		senders := []*fairSender{
			{lim: x1.Down, left: 700_000, wake: x1.Up.next},
			{lim: x2.Down, left: 300_000, wake: x2.Up.next},
			{lim: x3.Down, left: 50_000, wake: t0.Add(ms(500))},
			{lim: up.Up, left: 200_000, wake: up.Up.next},
		}
		replayFair(senders)
		for _, s := range senders {
			arrivals = append(arrivals, s.arrivals...)
		}
	}
	sum := sha256.New()
	for _, a := range arrivals {
		binary.Write(sum, binary.BigEndian, int64(a))
	}
	got := hex.EncodeToString(sum.Sum(nil))
	t.Logf("%d arrivals, digest %s", len(arrivals), got)
	if want := "0eb47c23b5e5757681fe7dcce10caaa6bc63f7ebf4bb8d777785d1e0de66b215"; got != want {
		t.Errorf("the fair link's arrivals have digest %s, want %s as before queues", got, want)
	}
}

// A fairSender is a Pacer as the simulations drove it before queues: it
// books a piece when its window lets it, and its next when that one has
// arrived.
type fairSender struct {
	lim      Limiter
	left     int
	wake     time.Time
	arrivals []time.Duration // since t0
}

// replayFair runs senders, the one that wakes first going first, until each
// has sent all its bytes.
func replayFair(senders []*fairSender) {
	for {
		var s *fairSender
		for _, c := range senders {
			if c.left > 0 && (s == nil || c.wake.Before(s.wake)) {
				s = c
			}
		}
		if s == nil {
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
			a.ahead(s.left - n)
		}
		s.wake = now.Add(s.lim.Reserve(now, n))
		s.left -= n
		s.arrivals = append(s.arrivals, s.wake.Sub(t0))
	}
}
