package pacing

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A way is what one way of a link can carry, and how it fails.
type way struct {
	offline       bool    // it carries nothing
	rate          float64 // bytes per second; 0 for no limit, unless trace
	trace         *Trace  // the capacity over time, in place of rate
	outage, every time.Duration
	loss, burst   float64 // the share of packets lost, and the mean length of a burst of losses
	queue         Queue   // its bottleneck queue; none for fair shares
}

// rate is a way's mean rate in bytes per second: its trace's, or its rate.
func (w way) meanRate() float64 {
	if w.trace != nil {
		return w.trace.Rate()
	}
	return w.rate
}

// pieceTime is about how long the link takes to carry a Stream's piece.
const pieceTime = 25 * time.Millisecond

// A pipe is one way of a link: it carries bytes in the order they are
// booked, at its rate or as its trace lets it, and not during its outages,
// which come for outage out of every `every` from its epoch on, after the
// rest of the period. It loses packets as its way says. It is safe for
// concurrent use.
type pipe struct {
	way    way
	epoch  time.Time // when the trace and the outages start: the link's making
	random func() float64

	carried atomic.Int64  // the payload bytes booked on it
	total   *atomic.Int64 // counts them too, if not nil: a named network's tally

	mu sync.Mutex
	// At a rate, the pipe has carried all that was booked at since +
	// booked/rate, kept apart so that many small pieces add up without
	// rounding.
	since  time.Time
	booked float64
	// Under a trace, the opportunity last used (from the epoch, counting on
	// over repeats; -1 for none) and the bytes of it used.
	k    int64
	used int
	bad  bool // the loss process is in a burst
	// With a bottleneck queue, what waits in it and has been carried
	// lately, in the order it was sent; nil for fair shares.
	q *queue
}

// init makes p a pipe of w from epoch, losing packets by random.
func (p *pipe) init(w way, epoch time.Time, random func() float64) {
	p.way, p.epoch, p.random, p.since, p.k = w, epoch, random, epoch, -1
	if w.queue.fifo() {
		p.q = newQueue(w.queue, w.meanRate(), carriage{free: epoch, k: -1})
	}
}

// setWay changes what the pipe carries from now on: what was booked goes
// as it was, and a trace and outages start again at now. A queue's
// bookings are no longer pushed on by pieces booked after the change.
func (p *pipe) setWay(w way, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	free := now
	switch {
	case p.q != nil:
		free = later(p.q.last().free, now)
	case p.way.trace == nil && p.way.rate > 0:
		free = later(p.free(), now)
	}
	p.since, p.booked = free, 0
	p.way, p.epoch, p.k, p.used = w, now, -1, 0
	p.q = nil
	if w.queue.fifo() {
		p.q = newQueue(w.queue, w.meanRate(), carriage{free: free, k: -1})
	}
}

// longestWait is how long the pipe's bottleneck queue holds a packet at
// most, and whether it has one: its bound at its mean rate (none at no
// limit).
func (p *pipe) longestWait() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.q == nil {
		return 0, false
	}
	rate := p.way.meanRate()
	if rate <= 0 {
		return 0, true
	}
	bound := p.q.limit
	if !p.q.bytes {
		bound *= PacketSize
	}
	return time.Duration(bound / rate * float64(time.Second)), true
}

// enqueue books a piece of packets (costing cost) sent at sent, at now, in
// the pipe's queue, after everything sent before it and before everything
// sent after it, which it pushes on. The packets that find the queue full
// are dropped, the piece's last ones, unless force (a retransmission, which
// this model never loses). A fresh piece (sent as it is booked, not one its
// Pacer learns of late) counts on the queue holding what it held for the
// newest booking (see queue.room). It returns the booking, nil if every
// packet was dropped, and how many were. Bookings that ended more than back
// before now are let go: nothing sent since can go before them.
func (p *pipe) enqueue(now, sent time.Time, cost float64, packets int, force bool, back time.Duration, fresh bool) (b *booking, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.q
	q.letGo(q.off(now.Add(-back)))
	off := q.off(sent)
	i := q.place(off)
	admitted := packets
	if !force && packets > 0 {
		admitted = q.room(i, off, packets, cost, fresh)
		q.drops += packets - admitted
		if admitted == 0 {
			return nil, packets
		}
		cost *= float64(admitted) / float64(packets)
	}
	// (A piece of no new packet fills the last one sent, which took its
	// place in the queue: its bytes take their time on the link.)
	b = &booking{q: q, sent: off, cost: cost, packets: admitted}
	q.insert(b, i)
	p.recarry(i)
	if !fresh {
		q.joined(b, i)
	}
	return b, packets - admitted
}

// recarry works out when the link carries the queue's bookings from i on,
// in their order: each starts when it was sent or when the link is free of
// the one before, whichever is later. It stops where nothing changes.
func (p *pipe) recarry(i int) {
	q := p.q
	prev := q.gone
	if i > 0 {
		prev = q.entries[i-1].after
	}
	for j := i; j < len(q.entries); j++ {
		b := q.entries[j]
		start, end, after := p.carryAfter(prev, q.at(b.sent), b.cost)
		s, e := q.off(start), q.off(end)
		if j > i && s == b.start.Load() && e == b.end.Load() && after == b.after {
			return
		}
		b.start.Store(s)
		b.end.Store(e)
		b.after, prev = after, after
	}
}

// carryAfter returns when the link, standing at prev, starts and ends
// carrying cost bytes ready at ready, and where it stands then.
func (p *pipe) carryAfter(prev carriage, ready time.Time, cost float64) (start, end time.Time, after carriage) {
	switch {
	case p.way.trace != nil:
		start, end, after.k, after.used = p.traceFrom(prev.k, prev.used, ready, cost)
		after.free = end
		return start, end, after
	case p.way.rate <= 0:
		start = p.up(later(ready, prev.free))
		return start, start, carriage{free: start, k: -1}
	}
	start = p.up(later(ready, prev.free))
	end = p.carry(start, cost)
	return start, end, carriage{free: end, k: -1}
}

// count counts n bytes of payload booked on the pipe.
func (p *pipe) count(n int) {
	p.carried.Add(int64(n))
	if p.total != nil {
		p.total.Add(int64(n))
	}
}

// isOffline reports whether the pipe carries nothing now.
func (p *pipe) isOffline() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.way.offline
}

// meanRate is the pipe's rate now, in bytes per second: its trace's mean,
// or its rate (0: no limit).
func (p *pipe) meanRate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.way.meanRate()
}

// traceRateSpan is how much of a trace, from where a piece starts, sets the
// piece's size: a few pieces' time, so that a trace's bursts and gaps
// (opportunities come in whole milliseconds) average out.
const traceRateSpan = 4 * pieceTime

// rateFrom is the pipe's rate in bytes per second for a piece that starts
// at t, or after the last one booked: under a trace, what the trace
// carries over traceRateSpan from there (at least a byte a second), so
// that a piece takes about as long in the trace's slow stretches as in its
// fast ones; otherwise its rate (0: no limit).
func (p *pipe) rateFrom(t time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.way.trace == nil {
		return p.way.rate
	}
	from := max(t.Sub(p.epoch), 0)
	if p.k >= 0 {
		from = max(from, p.way.trace.At(p.k))
	}
	return max(p.way.trace.rateOver(from, traceRateSpan), 1)
}

// book books cost bytes, ready at ready, and returns when the pipe starts
// and ends carrying them.
func (p *pipe) book(ready time.Time, cost float64) (start, end time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.way.trace != nil:
		return p.bookTrace(ready, cost)
	case p.way.rate <= 0:
		start = p.up(ready)
		return start, start
	}
	free := p.free()
	if !ready.After(free) && (p.way.every == 0 || !p.up(free).After(free) && !free.Add(p.duration(cost)).After(p.nextOutage(free))) {
		p.booked += cost // the common case: queued behind the last booking, no outage on the way
		return free, p.free()
	}
	start = p.up(later(ready, free))
	end = p.carry(start, cost)
	p.since, p.booked = end, 0
	return start, end
}

// free is when the pipe has carried all that was booked (at a rate).
func (p *pipe) free() time.Time {
	return p.since.Add(p.duration(p.booked))
}

func (p *pipe) duration(cost float64) time.Duration {
	return time.Duration(cost / p.way.rate * float64(time.Second))
}

// carry returns when cost bytes that may start at t are carried at the
// pipe's rate, going around its outages.
func (p *pipe) carry(t time.Time, cost float64) time.Time {
	for {
		t = p.up(t)
		need := p.duration(cost)
		outage := p.nextOutage(t)
		if p.way.every == 0 || !t.Add(need).After(outage) {
			return t.Add(need)
		}
		cost -= outage.Sub(t).Seconds() * p.way.rate
		t = outage
	}
}

// up returns t, or if t falls in an outage, when the outage ends.
func (p *pipe) up(t time.Time) time.Time {
	if p.way.every == 0 {
		return t
	}
	phase := p.phase(t)
	if upFor := p.way.every - p.way.outage; phase >= upFor {
		return t.Add(p.way.every - phase)
	}
	return t
}

// nextOutage is when the next outage after t begins (t is not in one).
func (p *pipe) nextOutage(t time.Time) time.Time {
	if p.way.every == 0 {
		return time.Time{}
	}
	return t.Add(p.way.every - p.way.outage - p.phase(t))
}

// phase is where t falls in the outages' period.
func (p *pipe) phase(t time.Time) time.Duration {
	d := t.Sub(p.epoch) % p.way.every
	if d < 0 {
		d += p.way.every
	}
	return d
}

// bookTrace books cost bytes on the trace's opportunities: what is left of
// the last one used, if it comes at or after ready, then the next ones.
// Opportunities that no bytes were waiting for are lost, as are those in an
// outage.
func (p *pipe) bookTrace(ready time.Time, cost float64) (start, end time.Time) {
	start, end, p.k, p.used = p.traceFrom(p.k, p.used, ready, cost)
	return start, end
}

// traceFrom is bookTrace from opportunity k, with used bytes of it used: it
// returns where the bytes start and end, and the opportunity and bytes of
// it used then.
func (p *pipe) traceFrom(k int64, used int, ready time.Time, cost float64) (start, end time.Time, _ int64, _ int) {
	left := 0.0
	if k >= 0 && !p.at(k).Before(ready) {
		left = float64(PacketSize - used)
	}
	if left <= 0 {
		k = p.nextUp(max(k+1, p.way.trace.next(ready.Sub(p.epoch))))
		left = PacketSize
	}
	start = p.at(k)
	for cost > left {
		cost -= left
		k = p.nextUp(k + 1)
		left = PacketSize
	}
	return start, p.at(k), k, PacketSize - int(math.Floor(left-cost))
}

// at is when the trace's opportunity k comes.
func (p *pipe) at(k int64) time.Time {
	return p.epoch.Add(p.way.trace.At(k))
}

// nextUp is the first opportunity from k on that is not in an outage.
func (p *pipe) nextUp(k int64) int64 {
	for {
		at := p.at(k)
		up := p.up(at)
		if up.Equal(at) {
			return k
		}
		k = p.way.trace.next(up.Sub(p.epoch))
	}
}

// drained reports whether the pipe has carried all that was booked by now.
func (p *pipe) drained(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.q != nil:
		return !p.q.last().free.After(now)
	case p.way.trace != nil:
		return p.k < 0 || !p.at(p.k).After(now)
	case p.way.rate <= 0:
		return true
	}
	return !p.free().After(now)
}

// lose decides which of n packets the pipe loses, and returns how many it
// lost and the first of them (-1 for none). Without a burst, each is lost
// with the way's probability; with one, a Gilbert-Elliott process loses
// every packet while in its bad state, which lasts burst packets on average
// and comes as often as keeps the mean share lost.
func (p *pipe) lose(n int) (lost, first int) {
	first = -1
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.way.loss <= 0 {
		return 0, first
	}
	for i := range n {
		var drop bool
		if p.way.burst <= 1 {
			drop = p.random() < p.way.loss
		} else {
			if p.bad {
				p.bad = p.random() >= 1/p.way.burst
			} else {
				p.bad = p.random() < p.way.loss/(1-p.way.loss)/p.way.burst
			}
			drop = p.bad
		}
		if drop {
			lost++
			if first < 0 {
				first = i
			}
		}
	}
	return lost, first
}
