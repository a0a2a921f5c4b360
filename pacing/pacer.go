package pacing

import (
	"context"
	"io"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
)

// Plan says how one stream is paced. The zero Plan cuts 1-byte chunks and
// paces nothing; see the fields for what each adds.
type Plan struct {
	// Chunk is how the body is cut; each chunk is flushed when it ends.
	Chunk ChunkSize

	// Interval is the time from the start of one chunk to the start of the
	// next, on an absolute schedule (see Schedule); 0 for none.
	Interval time.Duration

	// Rate is the stream's own limit in bytes per second; 0 for none. The
	// stream gets a link of that rate, free from its first paced byte, so a
	// chunk leaves when the link would have carried its last byte: n bytes
	// take n/Rate. A Pacer that runs late catches up by at most CatchUp,
	// so the rate is a ceiling (see ownRate).
	Rate float64

	// Shared is a rate that the stream shares with others, used instead of
	// Rate when set: a Budget, or the Stream of a client's Link.
	Shared Limiter

	// Jitter varies the gaps between chunks: each chunk leaves up to
	// ±Jitter/2 of its gap away from its slot, so successive gaps vary by up
	// to ±Jitter (0.2 for 20%) while their mean stays exact.
	Jitter float64

	// Rand returns uniform numbers in [0, 1) for Jitter; nil uses
	// math/rand/v2.
	Rand func() float64

	// After is how many leading bytes go out unpaced, like nginx's
	// limit_rate_after: chunks that begin before it leave at once. Pacing
	// starts with the first chunk that begins at or past it.
	After int64

	// Deadline ends pacing: what is left past it goes out unpaced, at full
	// speed. The zero time sets no deadline.
	Deadline time.Time
}

// paces reports whether the plan ever waits.
func (pl *Plan) paces() bool {
	return pl.Interval > 0 || pl.Rate > 0 || pl.Shared != nil
}

// Pacer writes a body to an io.Writer one chunk at a time. No byte of a chunk
// is written before the chunk's slot in the schedule, and each chunk is
// flushed as soon as its last byte is written. Bytes are passed through as
// they come, never collected: a chunk that arrives in several writes goes out
// in several writes within its slot, so memory does not grow with the chunk.
//
// Write blocks until its bytes are out, which is how back pressure reaches
// whoever produces the body. A Pacer serves one stream; it is not safe for
// concurrent use.
type Pacer struct {
	ctx      context.Context
	w        io.Writer
	flush    func() error
	plan     Plan
	chunker  Chunker
	sched    Schedule
	budget   Limiter // the plan's shared rate, or the stream's own once paced
	settler  settler // the shared rate, if its bytes may arrive later than booked (a queue)
	clock    Clock
	readSize int
	idles    bool      // the rate is a link, told how long the source took
	lastOut  time.Time // when the last Write returned, if idles
	left     int       // bytes of the current Write not yet written

	started     bool // the current chunk has had its slot and bytes of it are written
	free        bool // the current chunk began within Plan.After
	flushWanted bool // the producer flushed inside a character: flush once it is whole
	stats       Stats
	catchUp     time.Duration // how far a late chunk's rate and schedule catch up
}

// Stats counts what a Pacer has done.
type Stats struct {
	Bytes  int64         // body bytes written
	Chunks int64         // chunks completed and flushed
	Waited time.Duration // time spent waiting for slots
	// Late is how far past their slots the Pacer woke, counting the
	// waits that woke more than CatchUp late (LateChunks of them): time
	// lost because the machine ran behind (a starved process, a loaded
	// CPU), which the stream does not make up.
	Late       time.Duration
	LateChunks int64
	Deadline   bool // the deadline passed, and the rest went out unpaced
}

// NewPacer returns a Pacer that writes to w, calls flush after every chunk,
// and paces as plan says. It stops waiting, and fails, as soon as ctx is
// done.
func NewPacer(ctx context.Context, w io.Writer, flush func() error, plan Plan, clock Clock) *Pacer {
	p := &Pacer{
		ctx:      ctx,
		w:        w,
		flush:    flush,
		plan:     plan,
		chunker:  NewChunker(plan.Chunk),
		sched:    Schedule{Interval: plan.Interval},
		clock:    clock,
		readSize: min(max(plan.Chunk.ByteHint(), minRead), maxRead),
		budget:   plan.Shared,
	}
	p.catchUp = CatchUp
	if plan.Jitter > 0 {
		// Jitter moves a chunk by up to half its gap on purpose: a chunk
		// moved later keeps its rate and schedule, as one late by at most
		// CatchUp does.
		gap := plan.Interval
		if plan.Rate > 0 {
			gap = max(gap, time.Duration(float64(p.ownBurst())/plan.Rate*float64(time.Second)))
		}
		p.catchUp += time.Duration(plan.Jitter / 2 * float64(gap))
	}
	p.sched.CatchUp = p.catchUp
	p.settler, _ = plan.Shared.(settler)
	_, sharedIdles := plan.Shared.(idler)
	if p.idles = sharedIdles || plan.Rate > 0 && plan.Shared == nil; p.idles {
		p.lastOut = clock.Now()
	}
	return p
}

// ownBurst is the most bytes a piece under the stream's own rate carries:
// a chunk, and at least what the rate sends in 100 ms.
func (p *Pacer) ownBurst() int {
	return max(RateChunk(p.plan.Rate).N, p.plan.Chunk.ByteHint())
}

// Stats returns what the Pacer has done so far.
func (p *Pacer) Stats() Stats { return p.stats }

// Write writes b chunk by chunk, waiting for each chunk's slot.
func (p *Pacer) Write(b []byte) (int, error) {
	p.left = len(b)
	if p.idles {
		// The time since the last Write returned is the source's: the
		// link was idle for it.
		if id, ok := p.budget.(idler); ok {
			now := p.clock.Now()
			id.idle(now.Sub(p.lastOut), now)
		}
		defer func() { p.lastOut = p.clock.Now() }()
	}
	written := 0
	for len(b) > 0 {
		if p.stats.Deadline {
			p.started = true // so that Close flushes what is left
			m, err := p.write(b)
			return written + m, err
		}
		n, end := p.chunker.Cut(b)
		if n > 0 {
			m, err := p.writeChunkPart(b[:n])
			written += m
			if err != nil {
				return written, err
			}
			b = b[n:]
		}
		if end {
			if err := p.endChunk(); err != nil {
				return written, err
			}
		} else if p.flushWanted && p.chunker.CanFlush() {
			p.flushWanted = false
			if err := p.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// writeChunkPart writes bytes of the current chunk: the first of them wait
// for the chunk's slot, and under a rate every piece waits for its budget.
func (p *Pacer) writeChunkPart(b []byte) (int, error) {
	first := !p.started
	if first {
		p.started = true
		p.free = p.stats.Bytes < p.plan.After
		if p.budget == nil && p.plan.Rate > 0 && !p.free {
			// The stream's own link, free from its first paced byte, so
			// that the first chunk is paced like the rest.
			p.budget = newOwnRate(p.plan.Rate, p.ownBurst(), p.catchUp, p.clock.Now())
		}
	}
	written := 0
	for len(b) > 0 {
		piece := b
		if p.budget != nil && !p.free && !p.stats.Deadline {
			piece = b[:min(len(b), p.budget.Burst())]
		}
		if a, ok := p.budget.(aheader); ok {
			a.ahead(p.left - len(piece))
		}
		if err := p.wait(len(piece), first); err != nil {
			return written, err
		}
		first = false
		m, err := p.write(piece)
		written += m
		if err != nil {
			return written, err
		}
		b = b[len(piece):]
	}
	return written, nil
}

func (p *Pacer) write(b []byte) (int, error) {
	m, err := p.w.Write(b)
	p.left -= m
	p.stats.Bytes += int64(m)
	return m, err
}

// wait waits until n bytes of the current chunk may leave (n is at most the
// budget's burst): for the chunk's first bytes, its slot on the interval schedule; under a rate, their turn
// in the budget. The slower of the two wins, and jitter moves the chunk
// about its slot.
func (p *Pacer) wait(n int, first bool) error {
	if p.free || p.stats.Deadline || !p.plan.paces() || !first && p.budget == nil {
		return p.ctx.Err() // nothing to wait for: no clock read on the hot path
	}
	now := p.clock.Now()
	if o, ok := p.budget.(opener); ok {
		for d := o.Open(now, n); d > 0; d = o.Open(now, n) {
			var err error
			if now, err = p.sleep(d, now); err != nil || p.stats.Deadline {
				return err
			}
		}
	}
	var d, gap time.Duration
	if p.budget != nil {
		d = p.budget.Reserve(now, n)
		gap = time.Duration(float64(n) / p.budget.Rate() * float64(time.Second))
	}
	if first {
		// The interval counts from when the chunk can leave under the
		// rate, so that the schedule is anchored where the first chunk
		// really leaves.
		d += p.sched.Reserve(now.Add(d))
		gap = max(gap, p.plan.Interval)
	}
	if first && d > 0 && p.plan.Jitter > 0 {
		d += p.jitter(gap)
	}
	if _, err := p.sleep(d, now); err != nil || p.settler == nil || p.stats.Deadline {
		return err
	}
	slept, past, err := settle(p.ctx, p.clock, p.settler, p.plan.Deadline)
	p.stats.Waited += slept
	p.stats.Deadline = p.stats.Deadline || past
	return err
}

// sleep waits d from now, or until the plan's deadline, whichever is sooner;
// at the deadline, pacing ends. It counts how late it woke, and returns
// when that was (now, if it did not sleep).
func (p *Pacer) sleep(d time.Duration, now time.Time) (time.Time, error) {
	slept, past, err := sleepBounded(p.ctx, p.clock, d, now, p.plan.Deadline)
	p.stats.Waited += slept
	p.stats.Deadline = p.stats.Deadline || past
	if slept == 0 || err != nil {
		return now, err
	}
	woke := p.clock.Now()
	if late := woke.Sub(now.Add(slept)); late > CatchUp {
		p.stats.Late += late
		p.stats.LateChunks++
		p.sched.lost(late)
	}
	return woke, nil
}

// jitter returns how far to move the current chunk from its slot: a random
// offset within ±Jitter/2 of the gap to the slot before. Slots stay on their
// absolute schedule, so the offsets do not add up and the mean gap is exact.
func (p *Pacer) jitter(gap time.Duration) time.Duration {
	random := p.plan.Rand
	if random == nil {
		random = rand.Float64
	}
	return time.Duration((random() - 0.5) * p.plan.Jitter * float64(gap))
}

// Flush pushes out what the current chunk has written so far, for a producer
// that flushes (a streaming upstream): pacing never holds back bytes that the
// source meant to send. It keeps a multi-byte character whole: while one is
// incomplete, the flush waits until it is complete.
func (p *Pacer) Flush() error {
	if !p.chunker.CanFlush() && !p.stats.Deadline {
		p.flushWanted = true
		return nil
	}
	return p.flush()
}

// Close ends the body: the last chunk, however short, is flushed.
func (p *Pacer) Close() error {
	return p.endChunk()
}

// ReadFrom copies r through the Pacer, reading about one chunk at a time so
// that r is read only as fast as chunks leave. It stands in for the
// io.ReaderFrom of the writer below (sendfile), which would bypass pacing.
func (p *Pacer) ReadFrom(r io.Reader) (int64, error) {
	bufp := getBuffer(p.readSize)
	defer putBuffer(bufp)
	buf := *bufp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := p.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (p *Pacer) endChunk() error {
	if !p.started {
		return nil
	}
	p.started = false
	p.flushWanted = false
	p.stats.Chunks++
	return p.flush()
}

// Read buffers for ReadFrom come in power-of-two sizes from minRead to
// maxRead, one pool per size, so a stream holds about one chunk's worth.
const (
	minRead = 512
	maxRead = 32 << 10
)

var bufferPools [7]sync.Pool // 512 B, 1 KiB, … 32 KiB

func bufferClass(size int) int {
	return bits.Len(uint(size-1)) - bits.Len(minRead-1)
}

func getBuffer(size int) *[]byte {
	class := bufferClass(size)
	if b, ok := bufferPools[class].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, minRead<<class)
	return &b
}

func putBuffer(b *[]byte) {
	bufferPools[bufferClass(len(*b))].Put(b)
}
