package pacing

import "time"

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

// A window is a connection's congestion window in one direction: TCP's slow
// start, counted in packets as TCP counts it, so that a small write (a
// response's head, a request) takes a whole packet of it. A new connection
// may have 10 packets in flight (sent and not yet acknowledged); each
// acknowledgement lets the window grow by the packets it acknowledges, so it
// doubles every round trip, until it is twice what the link carries in a
// round trip, past which the link alone is the limit. After an idle time of
// a retransmission timeout, the window is halved for each such time, down to
// 10 packets, as Linux does (tcp_slow_start_after_idle).
//
// Its times are the sender's: a piece is in flight from when it is sent until
// its acknowledgement comes back. The zero window is a new connection's.
type window struct {
	cwnd     int      // packets
	inflight int      // packets
	flights  []flight // in flight, oldest first
	lastSent time.Time
}

// A flight is a piece in flight: its packets, acknowledged at ack.
type flight struct {
	ack     time.Time
	packets int
}

// packets is how many packets n bytes of one write take.
func packets(n int) int {
	return max((n+SegmentSize-1)/SegmentSize, 1)
}

// open returns the earliest time from t on at which n more bytes, written
// at once, fit in the window; bdp is what the link carries in a round trip,
// in packets (0 for no limit), and rtt the round-trip time.
func (w *window) open(t time.Time, n int, bdp float64, rtt time.Duration) time.Time {
	w.acknowledge(t, bdp)
	w.restartAfterIdle(t, rtt)
	p := packets(n)
	if w.inflight+p <= w.cwnd || w.inflight == 0 {
		return t
	}
	// Walk the acknowledgements to come, growing a copy of the window.
	cwnd, inflight := w.cwnd, w.inflight
	for _, f := range w.flights {
		inflight -= f.packets
		cwnd = grow(cwnd, f.packets, bdp)
		if inflight+p <= cwnd {
			return f.ack
		}
	}
	return w.flights[len(w.flights)-1].ack
}

// room is how many more bytes fit in the window in full segments, as of the
// last acknowledgement it took in.
func (w *window) room() int {
	return (max(w.cwnd, initialPackets) - w.inflight) * SegmentSize
}

// sent records n bytes written at once at t, whose acknowledgement comes
// back at ack.
func (w *window) sent(t, ack time.Time, n int) {
	if w.cwnd == 0 {
		w.cwnd = initialPackets
	}
	p := packets(n)
	w.flights = append(w.flights, flight{ack, p})
	w.inflight += p
	w.lastSent = t
}

// acknowledge takes in the acknowledgements that have come back by t.
func (w *window) acknowledge(t time.Time, bdp float64) {
	if w.cwnd == 0 {
		w.cwnd = initialPackets
	}
	i := 0
	for ; i < len(w.flights) && !w.flights[i].ack.After(t); i++ {
		w.inflight -= w.flights[i].packets
		w.cwnd = grow(w.cwnd, w.flights[i].packets, bdp)
	}
	if i > 0 {
		w.flights = append(w.flights[:0], w.flights[i:]...)
	}
}

// restartAfterIdle shrinks the window of a connection that has sent nothing
// for a retransmission timeout or more: halved for each, down to the
// initial window.
func (w *window) restartAfterIdle(t time.Time, rtt time.Duration) {
	if w.inflight > 0 || w.lastSent.IsZero() {
		return
	}
	rto := rtt + minRTO
	for t.Sub(w.lastSent) >= rto && w.cwnd > initialPackets {
		w.cwnd = max(w.cwnd/2, initialPackets)
		w.lastSent = w.lastSent.Add(rto)
	}
}

// grow is slow start: the window grows by the packets acknowledged, until it
// is twice what the link carries in a round trip.
func grow(cwnd, acked int, bdp float64) int {
	if bdp > 0 && float64(cwnd) >= 2*bdp {
		return cwnd
	}
	return cwnd + acked
}
