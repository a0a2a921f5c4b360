package pacing

import "time"

// Packets on a link: what one carries, and what of it is a TCP segment's
// payload (1500 less the IP and TCP headers with timestamps).
const (
	PacketSize  = 1500
	SegmentSize = 1448
	// InitialWindow is what a new connection may send in its first round
	// trip: ten segments, as Linux and RFC 6928 have it.
	InitialWindow = 10 * SegmentSize
	// minRTO is the least retransmission timeout (Linux's, and RFC 6298's
	// floor of a second is not what servers use).
	minRTO = 200 * time.Millisecond
)

// A window is a connection's congestion window in one direction: TCP's slow
// start. A new connection may have InitialWindow bytes in flight (sent and
// not yet acknowledged); each acknowledgement lets the window grow by what
// it acknowledges, so it doubles every round trip, until it is more than the
// link carries in two round trips, past which the link alone is the limit.
// After an idle time of a retransmission timeout, the window is halved for
// each such time, down to InitialWindow, as Linux does
// (tcp_slow_start_after_idle).
//
// Its times are the sender's: a piece is in flight from when it is sent until
// its acknowledgement comes back. The zero window is a new connection's.
type window struct {
	cwnd     int
	inflight int
	flights  []flight // in flight, oldest first
	lastSent time.Time
}

// A flight is a piece in flight: n bytes, acknowledged at ack.
type flight struct {
	ack time.Time
	n   int
}

// open returns the earliest time from t on at which n more bytes fit in the
// window; bdp is what the link carries in a round trip (0 for no limit),
// and rtt the round-trip time.
func (w *window) open(t time.Time, n int, bdp float64, rtt time.Duration) time.Time {
	w.acknowledge(t, bdp)
	w.restartAfterIdle(t, rtt)
	if w.inflight+n <= w.cwnd || w.inflight == 0 {
		return t
	}
	// Walk the acknowledgements to come, growing a copy of the window.
	cwnd, inflight := w.cwnd, w.inflight
	for _, f := range w.flights {
		inflight -= f.n
		cwnd = grow(cwnd, f.n, bdp)
		if inflight+n <= cwnd {
			return f.ack
		}
	}
	return w.flights[len(w.flights)-1].ack
}

// room is how many more bytes fit in the window, as of the last
// acknowledgement it took in.
func (w *window) room() int {
	return max(w.cwnd, InitialWindow) - w.inflight
}

// sent records n bytes sent at t, whose acknowledgement comes back at ack.
func (w *window) sent(t, ack time.Time, n int) {
	if w.cwnd == 0 {
		w.cwnd = InitialWindow
	}
	w.flights = append(w.flights, flight{ack, n})
	w.inflight += n
	w.lastSent = t
}

// acknowledge takes in the acknowledgements that have come back by t.
func (w *window) acknowledge(t time.Time, bdp float64) {
	if w.cwnd == 0 {
		w.cwnd = InitialWindow
	}
	i := 0
	for ; i < len(w.flights) && !w.flights[i].ack.After(t); i++ {
		w.inflight -= w.flights[i].n
		w.cwnd = grow(w.cwnd, w.flights[i].n, bdp)
	}
	if i > 0 {
		w.flights = append(w.flights[:0], w.flights[i:]...)
	}
}

// restartAfterIdle shrinks the window of a connection that has sent nothing
// for a retransmission timeout or more: halved for each, down to
// InitialWindow.
func (w *window) restartAfterIdle(t time.Time, rtt time.Duration) {
	if w.inflight > 0 || w.lastSent.IsZero() {
		return
	}
	rto := rtt + minRTO
	for t.Sub(w.lastSent) >= rto && w.cwnd > InitialWindow {
		w.cwnd = max(w.cwnd/2, InitialWindow)
		w.lastSent = w.lastSent.Add(rto)
	}
}

// grow is slow start: the window grows by what is acknowledged, until it is
// twice what the link carries in a round trip.
func grow(cwnd, acked int, bdp float64) int {
	if bdp > 0 && float64(cwnd) >= 2*bdp {
		return cwnd
	}
	return cwnd + acked
}
