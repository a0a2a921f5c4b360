package pacing

import (
	"context"
	"testing"
	"time"
)

// These tests run a link's bottleneck queue on a fake clock: slow-4g's link
// (150 ms, 200,000 B/s down), a bulk download in it, and what comes beside.

// queuedLink is slow-4g's link with a queue of packets.
func queuedLink(packets int) *Link {
	return NewLink(Network{RTT: ms(150), Down: 200_000, Up: 93_750, Queue: Queue{Packets: packets}}, t0)
}

// bulk is a download of n bytes on a new connection of link, from t0.
func bulk(link *Link, n int) (*sender, *Conn) {
	conn := NewConn(t0)
	x := link.Open(conn, 1, t0)
	return &sender{lim: x.Down, left: n, wake: x.Up.next}, conn
}

// peak is the most that waited in link's way down just after a booking
// sent in (from, to] joined it, in packets, and when.
func peak(link *Link, from, to time.Time) (most float64, at time.Time) {
	link.down.mu.Lock()
	defer link.down.mu.Unlock()
	q := link.down.q
	for i, b := range q.entries {
		if sent := q.at(b.sent); sent.After(from) && !sent.After(to) {
			if held := q.held(i+1, b.sent); held > most {
				most, at = held, sent
			}
		}
	}
	return most, at
}

func TestABulkStreamFillsTheQueueToItsSizeAndNoFurther(t *testing.T) {
	for _, packets := range []int{100, 1000} {
		link := queuedLink(packets)
		s, _ := bulk(link, 10_000_000)
		// A piece is booked when its Pacer wakes, once the piece before it
		// has arrived: what was sent by a time is all booked once the
		// queue's longest wait and a round trip have passed.
		wait, _ := link.down.longestWait()
		lag := wait + link.Network().RTT
		most, at := 0.0, t0
		for now := t0.Add(lag); now.Before(t0.Add(45 * time.Second)); now = now.Add(100 * time.Millisecond) {
			simulateUntil(now, s)
			if held, when := peak(link, now.Add(-lag-100*time.Millisecond), now.Add(-lag)); held > most {
				most, at = held, when
			}
		}
		t.Logf("queue of %d packets: at most %.1f waiting, at %v; %d dropped", packets, most, at.Sub(t0), link.down.q.drops)
		if most > float64(packets) || most < float64(packets)-1 {
			t.Errorf("queue of %d packets held at most %.1f, want it filled, and no more", packets, most)
		}
		if link.down.q.drops == 0 {
			t.Errorf("queue of %d packets: nothing dropped", packets)
		}
	}
}

func TestASecondStreamWaitsForWhatIsQueuedAheadOfIt(t *testing.T) {
	// Slow start ends as the queue begins to fill (HyStart), and the
	// window then grows into it along CUBIC's curve: at 10 s, a few hundred
	// packets wait.
	link := queuedLink(1000)
	s, _ := bulk(link, 6_000_000)
	at := t0.Add(10 * time.Second)
	simulateUntil(at, s)
	// Another exchange's response, sent at 10 s, on a connection with room
	// in its window (none, here: the queue is what it waits for).
	x := link.Open(nil, 0, at)
	other := &sender{lim: x.Down, left: 1448, wake: at}
	// By 18 s the bulk stream has booked all it sent before 10 s (its
	// Pacer learns that its window let it only as its pieces arrive), and
	// the queue still has what it carried after 10 s.
	simulateUntil(at.Add(8*time.Second), s, other)
	if len(other.arrivals) != 1 {
		t.Fatalf("the other response arrived in %d pieces by 18 s", len(other.arrivals))
	}
	// What the bulk stream sent before 10 s and the link had not carried
	// by then goes first: all of it, whenever its Pacer booked it.
	link.down.mu.Lock()
	q := link.down.q
	ahead := 0.0
	var mine *booking
	for _, b := range q.entries {
		switch {
		case b == x.Down.queued:
			mine = b
		case q.at(b.sent).After(at):
		case b.endTime().After(at):
			part := b.cost
			if b.startTime().Before(at) {
				part *= float64(b.end.Load()-q.off(at)) / float64(b.end.Load()-b.start.Load())
			}
			ahead += part
		}
	}
	link.down.mu.Unlock()
	if mine == nil {
		t.Fatal("the other response's piece is not in the queue")
	}
	want := at.Add(seconds(ahead / 200_000))
	got := mine.startTime()
	t.Logf("sent at 10 s behind %.0f bytes (%v of the link): the link started it after %v, it arrived after %v", ahead, seconds(ahead/200_000), got.Sub(at), other.arrivals[0].at.Sub(at))
	if ahead < 100*PacketSize || got.Sub(want).Abs() > time.Millisecond {
		t.Errorf("the link started it at %v after it was sent, want %v: behind the %.0f bytes queued before it", got.Sub(at), want.Sub(at), ahead)
	}
	if arrived, wantArrival := other.arrivals[0].at, mine.endTime().Add(link.Network().RTT/2); !arrived.Equal(wantArrival) {
		t.Errorf("it arrived at %v, want half a round trip after the link carried it, %v", arrived.Sub(at), wantArrival.Sub(at))
	}
}

func TestAFullQueueDropsAndTheWindowIsCut(t *testing.T) {
	link := queuedLink(20)
	s, conn := bulk(link, 1_000_000)
	most, cut := 0.0, false
	for now := t0; !cut && now.Before(t0.Add(10*time.Second)); now = now.Add(time.Millisecond) {
		simulateUntil(now, s)
		conn.mu.Lock()
		w := conn.down.cwnd
		conn.mu.Unlock()
		if link.down.q.drops > 0 && w < most {
			cut = true
			t.Logf("after %d packets dropped at %v, the window went from %.1f to %.1f packets", link.down.q.drops, now.Sub(t0), most, w)
			if w > most*lossCut+1 {
				t.Errorf("the window was cut to %.1f of %.1f, want %.2f of it", w, most, lossCut)
			}
		}
		most = max(most, w)
	}
	if !cut {
		t.Fatal("no drop cut the window")
	}
	simulate(s)
	if s.sent != 1_000_000 {
		t.Errorf("%d of 1,000,000 bytes arrived", s.sent)
	}
}

func TestANewConnectionsHandshakeWaitsInTheQueue(t *testing.T) {
	// A tiny request on a new connection at 12 s, beside a bulk download:
	// its SYN-ACK waits behind what the download queued, so the request
	// goes up the queue's wait later than on an idle link.
	link := queuedLink(1000)
	s, _ := bulk(link, 6_000_000)
	at := t0.Add(12 * time.Second)
	simulateUntil(at.Add(8*time.Second), s)
	x := link.Open(NewConn(at), 1, at)
	handshake := x.Up.next.Sub(at)
	t.Logf("the handshake of a new connection at 12 s took %v; on an idle link, %v", handshake, link.Network().RTT)
	if handshake < time.Second {
		t.Errorf("the handshake took %v: it did not wait behind the download's queue", handshake)
	}
	fresh := queuedLink(1000)
	if y := fresh.Open(NewConn(at), 1, at); y.Up.next.Sub(at) > link.Network().RTT+time.Millisecond {
		t.Errorf("on an idle link the handshake took %v, want a round trip", y.Up.next.Sub(at))
	}
}

func TestAPacedBodyThroughAQueueTakesTheLinksTimeForEveryByte(t *testing.T) {
	// A Pacer writing odd-sized pieces through a queued link: bytes that
	// fill a packet already sent start no packet of their own, and take
	// their time on the link all the same. 600,000 bytes at slow-4g's
	// payload rate take 600,000 / 193,067 s after the handshake, no less.
	link := queuedLink(1000)
	x := link.Open(NewConn(t0), 1, t0)
	clock := &fakeClock{now: x.Up.next}
	body := &countingSink{}
	p := NewPacer(context.Background(), body, func() error { return nil }, Plan{Chunk: ChunkSize{N: 1000}, Shared: x.Down}, clock)
	for range 600 {
		p.Write(make([]byte, 1000))
	}
	took := clock.now.Sub(x.Up.next)
	least := seconds(600_000 / (200_000.0 * SegmentSize / PacketSize))
	t.Logf("600,000 bytes took %v; the link carries them in %v", took, least)
	if took < least || took > least+time.Second {
		t.Errorf("600,000 bytes took %v, want the link's %v and its slow start", took, least)
	}
}

type countingSink struct{ n int }

func (c *countingSink) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func TestAHandshakePushedOnMovesByTheLargestPushNotTheirSum(t *testing.T) {
	// Each packet of a handshake is sent once the one before it is back:
	// pushing the SYN on by 400 ms moves the client's next flight by as
	// much, so a push of 450 ms of that flight moves the end by 450 ms,
	// not 850.
	q := &queue{base: t0}
	h := &handshake{}
	var bs []*booking
	for _, end := range []time.Duration{ms(1), ms(75), ms(170)} {
		b := &booking{q: q}
		b.end.Store(int64(end))
		h.add(b)
		bs = append(bs, b)
	}
	h.end(t0.Add(ms(340)))
	bs[0].end.Add(int64(ms(400)))
	bs[2].end.Add(int64(ms(450)))
	if got, want := h.settle().Sub(t0), ms(340+450); got != want {
		t.Errorf("the handshake ends at %v, want %v", got, want)
	}
}
