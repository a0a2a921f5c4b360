package pacing

import (
	"sort"
	"sync/atomic"
	"time"
)

// A Queue is the bottleneck queue of each way of a link: what the client's
// connections send waits in it, first in first out, for the link to carry
// it, and a packet that finds it full is dropped (drop-tail), as at a base
// station's buffer for one user or a home router's. A connection whose
// window grows fills it, and everything sent behind waits. At most one of
// Packets, Bytes and Delay is set.
//
// The zero Queue is none: the link carries its streams' pieces in turn, a
// fair share each with no queueing delay, as a router with fair queueing
// (fq_codel) does.
type Queue struct {
	// Packets: at most this many packets wait (Linux's and netem's default
	// is 1000).
	Packets int
	// Bytes: at most this many bytes wait.
	Bytes int64
	// Delay: at most what the way's rate carries in this long waits.
	Delay time.Duration
}

// fifo reports whether q is a queue, not fair sharing.
func (q Queue) fifo() bool { return q != Queue{} }

// bound is what q holds at most on a way of rate bytes per second: a count
// of packets, or of bytes if bytes.
func (q Queue) bound(rate float64) (limit float64, bytes bool) {
	switch {
	case q.Packets > 0:
		return float64(q.Packets), false
	case q.Bytes > 0:
		return float64(q.Bytes), true
	}
	return q.Delay.Seconds() * rate, true
}

// A booking is one piece's place in a queue: when its packets joined it
// (were sent), and when the link started and ended carrying them. A piece
// that a connection sent earlier but booked later (its Pacer was asleep
// meanwhile) goes before it and pushes it on, so start and end only grow,
// and whoever waits for them reads them again (Stream.settle, a window's
// acknowledgements).
type booking struct {
	q          *queue
	sent       int64 // nanoseconds from q.base
	cost       float64
	packets    int
	start, end atomic.Int64 // nanoseconds from q.base
	after      carriage     // where the link stands once it has carried the piece
	// cum is what the queue's bookings up to this one hold in all, in
	// the queue's unit (see held), counted from the queue's first.
	cum float64
}

// startTime and endTime are when the link starts and ends carrying the
// piece, as of now.
func (b *booking) startTime() time.Time { return b.q.at(b.start.Load()) }
func (b *booking) endTime() time.Time   { return b.q.at(b.end.Load()) }

// A carriage is where a way's carrying stands: when it is free, and under
// a trace, the opportunity last used and the bytes of it used.
type carriage struct {
	free time.Time
	k    int64
	used int
}

// A queue is a way's bookings, in the order they were sent: first in, first
// out. It is its pipe's, and used under the pipe's lock.
type queue struct {
	base    time.Time // the times of its bookings count from it
	limit   float64   // packets, or bytes if bytes
	bytes   bool
	entries []*booking // by sent, oldest first
	gone    carriage   // where the link stands after the bookings let go
	goneCum float64    // what the bookings let go held in all (see booking.cum)
	drops   int        // packets dropped, for tests
	// The newest booking of a piece learnt of late: when it was sent, what
	// waited in the queue once it had joined, and how long it waited; see
	// room.
	newest, newestWait int64
	newestHeld         float64
}

func newQueue(spec Queue, rate float64, free carriage) *queue {
	q := &queue{base: free.free, gone: free}
	q.limit, q.bytes = spec.bound(rate)
	return q
}

func (q *queue) at(off int64) time.Time { return q.base.Add(time.Duration(off)) }
func (q *queue) off(t time.Time) int64  { return int64(t.Sub(q.base)) }

// place is where a booking sent at off goes: after every one sent at or
// before it.
func (q *queue) place(off int64) int {
	i := len(q.entries)
	for i > 0 && q.entries[i-1].sent > off {
		i--
	}
	return i
}

// held is what waits in the queue at off of the bookings before i, in its
// unit: the packets that have not left the link yet, the one being carried
// among them, as a packet-level link counts them; or the bytes not carried
// yet. First in first out, the link ends carrying them in order, and each
// starts once the one before has ended: the first not ended by off may be
// under way, and every one after it waits whole, as the running totals
// (booking.cum) count them. So held takes a search, not a walk through the
// queue.
func (q *queue) held(i int, off int64) float64 {
	k := sort.Search(i, func(j int) bool { return q.entries[j].end.Load() > off })
	if k == i {
		return 0
	}
	b := q.entries[k]
	held := q.cumBefore(i) - b.cum // k+1 to i-1, whole
	start, end := b.start.Load(), b.end.Load()
	switch {
	case start >= off:
		held += q.unit(b)
	case q.bytes:
		held += b.cost * float64(end-off) / float64(end-start)
	default: // packet k leaves at start + (end-start)(k+1)/packets
		held += float64(b.packets - int(int64(b.packets)*(off-start)/(end-start)))
	}
	return held
}

// unit is what b holds in the queue's unit: packets, or bytes.
func (q *queue) unit(b *booking) float64 {
	if q.bytes {
		return b.cost
	}
	return float64(b.packets)
}

// cumBefore is what the bookings before i hold in all (see booking.cum).
func (q *queue) cumBefore(i int) float64 {
	if i == 0 {
		return q.goneCum
	}
	return q.entries[i-1].cum
}

// insert puts b at i, and counts it in the running totals.
func (q *queue) insert(b *booking, i int) {
	u := q.unit(b)
	b.cum = q.cumBefore(i) + u
	q.entries = append(q.entries, nil)
	copy(q.entries[i+1:], q.entries[i:])
	q.entries[i] = b
	for _, later := range q.entries[i+1:] {
		later.cum += u
	}
}

// room is how many of packets (costing cost) a booking sent at off before
// i may put in the queue: all, or those that fit (the rest are dropped).
//
// A booking sent as it is booked (fresh: a new request's, a handshake's)
// does not see all that waits: a bulk stream's pieces are booked as its
// Pacer learns they went, up to the queue's wait later. For it, the queue
// holds at least what it held when the newest booking joined, for as long
// as that one waited: a queue that a transfer keeps full stays full.
func (q *queue) room(i int, off int64, packets int, cost float64, fresh bool) int {
	held := q.held(i, off)
	if fresh && off >= q.newest && off-q.newest < q.newestWait {
		held = max(held, q.newestHeld)
	}
	space := q.limit - held
	per := 1.0
	if q.bytes {
		per = cost / float64(packets)
	}
	return min(max(int(space/per), 0), packets)
}

// joined records that b, at i, a piece learnt of late (which sees all that
// was sent before it), joined the queue: if it is the newest such, what
// waits with it, for room.
func (q *queue) joined(b *booking, i int) {
	if b.sent >= q.newest {
		q.newest, q.newestWait, q.newestHeld = b.sent, b.start.Load()-b.sent, q.held(i+1, b.sent)
	}
}

// letGo forgets the bookings that ended before off: no booking sent since
// can go before them.
func (q *queue) letGo(off int64) {
	i := 0
	for i < len(q.entries) && q.entries[i].end.Load() < off {
		i++
	}
	if i > 0 {
		q.gone, q.goneCum = q.entries[i-1].after, q.entries[i-1].cum
		clear(q.entries[:i]) // let the collector have them
		q.entries = q.entries[i:]
	}
}

// last is where the link stands after every booking.
func (q *queue) last() carriage {
	if len(q.entries) == 0 {
		return q.gone
	}
	return q.entries[len(q.entries)-1].after
}
