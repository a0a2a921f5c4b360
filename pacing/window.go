package pacing

import (
	"math"
	"slices"
	"time"
)

// Packets on a link: what one carries, and what of it is a TCP segment's
// payload (1500 less the IP and TCP headers with timestamps).
const (
	PacketSize  = 1500
	SegmentSize = 1448
	// InitialWindow is what a new connection may send in its first round
	// trip: ten full segments, as Linux and RFC 6928 have it.
	InitialWindow = initialPackets * SegmentSize
	// initialPackets is that window in packets, which TCP counts it in.
	initialPackets = 10
	// minRTO is the least retransmission timeout (Linux's, and RFC 6298's
	// floor of a second is not what servers use).
	minRTO = 200 * time.Millisecond
)

// lossCut is what a loss leaves of the window: 0.7 of it, CUBIC's beta
// (RFC 9438), Linux's default congestion control.
const lossCut = 0.7

// After a loss the window grows as CUBIC's does (RFC 9438): along a cubic
// curve in time, C (t - K)^3 + Wmax, which comes back quickly towards the
// window before the cut (Wmax), flattens out near it and then probes
// beyond; or, where that is more, as fast as Reno would (its Reno-friendly
// region: renoFriendly packets a round trip, about 0.53, with the cut to
// 0.7 carrying what Reno carries, Mathis et al.'s 1.22 / sqrt(p) packets a
// round trip). A connection losing now and then keeps most of its window;
// one losing often, as HTTP/2's one connection over a lossy mobile link,
// runs at Reno's rate. (Growing a packet a round trip, as this model first
// did, carried 1.68 / sqrt(p): a page over HTTP/2 losing 3% loaded a
// quarter sooner than through a packet-level link with Linux's CUBIC.)
const (
	renoFriendly = 3 * (1 - lossCut) / (1 + lossCut)
	cubicC       = 0.4 // packets a second cubed
)

// A window is a connection's congestion window in one direction, counted in
// packets as TCP counts it, so that a small write (a response's head, a
// request) takes a whole packet of it. A new connection may have 10
// packets in flight (sent and not yet acknowledged). In slow start each
// acknowledgement lets the window grow by the packets it acknowledges, so
// it doubles every round trip. A loss ends slow start and cuts the window
// to 0.7 of itself, as CUBIC (Linux's default) does; it then grows back as
// CUBIC's does (cubic). The window grows only while the connection uses it
// (at least half of it in flight), as Linux's does. After an idle time of
// a retransmission timeout, it is halved for each such time, down to 10
// packets (tcp_slow_start_after_idle).
//
// Its times are the sender's: a piece is in flight from when it is sent until
// its acknowledgement comes back. The zero window is a new connection's.
type window struct {
	initial  float64  // packets a new connection may send at once; 0 for initialPackets
	cwnd     float64  // packets
	inflight int      // packets
	peak     int      // the most packets in flight since the window last grew
	flights  []flight // in flight, oldest first
	lastSent time.Time
	// After a loss: congestion avoidance from ssthresh on; a loss seen
	// before recovered (when the retransmissions are acknowledged) is part
	// of the same event.
	ssthresh  float64
	rtt       time.Duration
	recovered time.Time
	// CUBIC's state: the window before the last cut, the curve's origin
	// and the time it takes to reach it from the epoch (the first
	// acknowledgement after a cut; zero until then), and what Reno's
	// window would be.
	wMax, origin, k, wEst float64
	epoch                 time.Time
	// blocked is when the last retransmission arrives: what the connection
	// sent after it arrives no sooner (in order).
	blocked time.Time
	// Through a queue, round trips grow with what waits in it: the least
	// seen and a smoothed one, and HyStart's round (see sample).
	minRTT, srtt, rttvar time.Duration
	roundFrom            time.Time     // a round ends with the acknowledgement of a packet sent from then on
	samples              int           // of the round
	roundMin             time.Duration // the least of them
}

// HyStart, as Linux's CUBIC and quic-go have it: in slow start, once the
// window is at least 16 packets, the least of a round's first 8 round
// trips, above the least ever seen by an eighth of it (from 4 to 16 ms),
// ends slow start: the queue is filling.
const (
	hystartSamples = 8
	hystartWindow  = 16
)

// A flight is a packet in flight, acknowledged at ack; or, if it went
// through a queue, a round trip after the link carried it: packet i of b's
// packets, whose times a piece sent earlier may yet push on.
type flight struct {
	ack  time.Time
	b    *booking
	i, p int32
}

// at is when the flight is acknowledged, as of now, rtt after it left.
func (f *flight) at(rtt time.Duration) time.Time {
	if f.b == nil {
		return f.ack
	}
	start, end := f.b.start.Load(), f.b.end.Load()
	if f.i < f.p-1 {
		end = start + (end-start)*int64(f.i+1)/int64(f.p)
	}
	return f.b.q.at(end).Add(rtt)
}

// open returns the earliest time from t on at which p more packets fit in
// the window; rtt is the round-trip time.
func (w *window) open(t time.Time, p int, rtt time.Duration) time.Time {
	w.rtt = rtt
	w.acknowledge(t)
	w.restartAfterIdle(t)
	if p == 0 || float64(w.inflight+p) <= w.cwnd || w.inflight == 0 {
		return t // (no new packet: the bytes fill one already in flight)
	}
	// Walk the acknowledgements to come, growing a copy of the window.
	probe := *w
	inflight := w.inflight
	for i := range w.flights {
		ack := w.flights[i].at(rtt)
		inflight--
		probe.grow(1, ack)
		if float64(inflight+p) <= probe.cwnd {
			return ack
		}
	}
	return w.flights[len(w.flights)-1].at(rtt)
}

// first is the packets a new connection may send in its first round trip.
func (w *window) first() float64 {
	if w.initial > 0 {
		return w.initial
	}
	return initialPackets
}

// room is how many more bytes fit in the window in full segments, as of the
// last acknowledgement it took in.
func (w *window) room() int {
	return max(int(max(w.cwnd, w.first()))-w.inflight, 0) * SegmentSize
}

// sent records p packets written at once at t, acknowledged one by one
// from first to last, as the link carried them, but for lost of them,
// acknowledged at resent once sent again.
func (w *window) sent(t, first, last time.Time, p, lost int, resent time.Time) {
	for i := range p - lost {
		ack := last
		if i < p-lost-1 {
			ack = first.Add(last.Sub(first) * time.Duration(i+1) / time.Duration(p))
		}
		w.flights = append(w.flights, flight{ack: ack})
	}
	w.record(t, p, lost, resent)
}

// sentQueued is sent for p packets that went through a queue in b (nil if
// it dropped them all), acknowledged a round trip after the link carried
// each, as b's times stand when they are looked at.
func (w *window) sentQueued(t time.Time, b *booking, p, lost int, resent time.Time) {
	for i := range p - lost {
		w.flights = append(w.flights, flight{b: b, i: int32(i), p: int32(p - lost)})
	}
	w.record(t, p, lost, resent)
}

// record records the lost of p packets written at t, which are
// acknowledged at resent once sent again, after the others in flights.
func (w *window) record(t time.Time, p, lost int, resent time.Time) {
	if w.cwnd == 0 {
		w.cwnd = w.first()
	}
	for range lost {
		w.flights = append(w.flights, flight{ack: resent})
	}
	if lost > 0 { // acknowledgements come in the order they come, not the order sent
		slices.SortStableFunc(w.flights, func(a, b flight) int { return a.at(w.rtt).Compare(b.at(w.rtt)) })
	}
	w.inflight += p
	w.peak = max(w.peak, w.inflight)
	w.lastSent = t
}

// acknowledge takes in the acknowledgements that have come back by t.
func (w *window) acknowledge(t time.Time) {
	if w.cwnd == 0 {
		w.cwnd = w.first()
	}
	i := 0
	for ; i < len(w.flights); i++ {
		f := &w.flights[i]
		ack := f.at(w.rtt)
		if ack.After(t) {
			break
		}
		w.inflight--
		if f.b != nil {
			w.sample(f.b.q.at(f.b.sent), ack)
		}
		w.grow(1, ack)
	}
	if i > 0 {
		w.flights = append(w.flights[:0], w.flights[i:]...)
	}
}

// sample takes in the round trip of a packet sent at sent through a queue
// and acknowledged at ack, and ends slow start as HyStart does.
func (w *window) sample(sent, ack time.Time) {
	rtt := ack.Sub(sent)
	if w.srtt == 0 {
		w.srtt, w.rttvar = rtt, rtt/2
	} else { // RFC 6298
		w.rttvar += ((w.srtt - rtt).Abs() - w.rttvar) / 4
		w.srtt += (rtt - w.srtt) / 8
	}
	if w.minRTT == 0 || rtt < w.minRTT {
		w.minRTT = rtt
	}
	if w.ssthresh != 0 {
		return // slow start is over
	}
	if sent.After(w.roundFrom) || w.roundFrom.IsZero() { // a packet sent after the round began
		w.roundFrom, w.samples, w.roundMin = w.lastSent, 0, 0
	}
	if w.samples == hystartSamples {
		return
	}
	w.samples++
	if w.roundMin == 0 || rtt < w.roundMin {
		w.roundMin = rtt
	}
	eta := min(max(w.minRTT/8, 4*time.Millisecond), 16*time.Millisecond)
	if w.samples == hystartSamples && w.cwnd >= hystartWindow && w.roundMin > w.minRTT+eta {
		w.ssthresh = w.cwnd
	}
}

// lost takes in a loss seen at seen, whose retransmission is acknowledged
// at recovered: the window is cut, once for all the losses until then, and
// slow start ends.
func (w *window) lost(seen, recovered time.Time) {
	if seen.Before(w.recovered) {
		return
	}
	if w.cwnd < w.wMax {
		// Fast convergence: a window still shrinking gives way sooner.
		w.wMax = w.cwnd * (1 + lossCut) / 2
	} else {
		w.wMax = w.cwnd
	}
	w.cwnd = max(w.cwnd*lossCut, 2)
	w.ssthresh, w.recovered, w.epoch = w.cwnd, recovered, time.Time{}
}

// restartAfterIdle shrinks the window of a connection that has sent nothing
// for a retransmission timeout or more: halved for each, down to the
// initial window.
func (w *window) restartAfterIdle(t time.Time) {
	if w.inflight > 0 || w.lastSent.IsZero() {
		return
	}
	rto := w.rto()
	if t.Sub(w.lastSent) >= rto {
		w.epoch = time.Time{} // the curve starts afresh from what is left
	}
	for t.Sub(w.lastSent) >= rto && w.cwnd > w.first() {
		w.cwnd = max(w.cwnd/2, w.first())
		w.lastSent = w.lastSent.Add(rto)
	}
}

// rto is the connection's retransmission timeout: a round trip and
// minRTO, as Linux's RTO (smoothed round trip and four times its variation,
// at least minRTO) is on a link whose round trips do not vary; through a
// queue, the smoothed round trip it has seen.
func (w *window) rto() time.Duration {
	if w.srtt > 0 {
		return w.srtt + max(4*w.rttvar, minRTO)
	}
	return w.rtt + minRTO
}

// grow takes in acked packets, acknowledged at t: in slow start the window
// grows by as many, after a loss as CUBIC's does. It grows only while the
// connection uses it.
func (w *window) grow(acked int, t time.Time) {
	switch {
	case w.cwnd >= 2*float64(w.peak):
		// not used: nothing to grow for
	case w.ssthresh == 0 || w.cwnd < w.ssthresh:
		w.cwnd += float64(acked)
	default:
		w.cubic(float64(acked), t)
	}
}

// cubic grows the window by acked packets acknowledged at t, as RFC 9438
// does in congestion avoidance: to Reno's window where the cubic curve is
// below it, or else towards the curve's value a round trip on, by at most
// half the window a round trip.
func (w *window) cubic(acked float64, t time.Time) {
	if w.epoch.IsZero() {
		w.epoch, w.wEst = t, w.cwnd
		w.origin, w.k = max(w.wMax, w.cwnd), 0
		if w.cwnd < w.wMax {
			w.k = math.Cbrt((w.wMax - w.cwnd) / cubicC)
		}
	}
	alpha := renoFriendly
	if w.wEst >= w.wMax {
		alpha = 1 // past the old window, Reno's own growth
	}
	w.wEst += alpha * acked / w.cwnd
	before := w.cwnd
	if w.curve(t.Sub(w.epoch)) < w.wEst {
		w.cwnd = w.wEst
	} else {
		target := min(max(w.curve(t.Sub(w.epoch)+w.rtt), w.cwnd), 1.5*w.cwnd)
		w.cwnd += (target - w.cwnd) / w.cwnd * acked
	}
	if w.wMax == 0 {
		// No loss yet (slow start ended by HyStart): the rate is still
		// unknown, and Linux's CUBIC grows the window by at least a
		// twentieth of it a round trip (a packet every 20 acknowledged).
		w.cwnd = max(w.cwnd, before+acked/unknownGrowth)
	}
}

// unknownGrowth is Linux's CUBIC's cap on the acknowledgements a window
// waits for to grow a packet while it has seen no loss.
const unknownGrowth = 20

// curve is CUBIC's window d after the epoch.
func (w *window) curve(d time.Duration) float64 {
	x := d.Seconds() - w.k
	return w.origin + cubicC*x*x*x
}
