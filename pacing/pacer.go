package pacing

import (
	"context"
	"io"
	"math/bits"
	"sync"
	"time"
)

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
	chunker  Chunker
	sched    Schedule
	clock    Clock
	readSize int

	started     bool // the current chunk has had its slot and bytes of it are written
	flushWanted bool // the producer flushed inside a character: flush once it is whole
	stats       Stats
}

// Stats counts what a Pacer has done.
type Stats struct {
	Bytes  int64         // body bytes written
	Chunks int64         // chunks completed and flushed
	Waited time.Duration // time spent waiting for slots
}

// NewPacer returns a Pacer that writes to w, calls flush after every chunk,
// cuts chunks of size c and spaces them by sched. It stops waiting, and
// fails, as soon as ctx is done.
func NewPacer(ctx context.Context, w io.Writer, flush func() error, c ChunkSize, sched Schedule, clock Clock) *Pacer {
	return &Pacer{
		ctx:      ctx,
		w:        w,
		flush:    flush,
		chunker:  NewChunker(c),
		sched:    sched,
		clock:    clock,
		readSize: min(max(c.ByteHint(), minRead), maxRead),
	}
}

// Stats returns what the Pacer has done so far.
func (p *Pacer) Stats() Stats { return p.stats }

// Write writes b chunk by chunk, waiting for each chunk's slot.
func (p *Pacer) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n, end := p.chunker.Cut(b)
		if n > 0 {
			if !p.started {
				if err := p.wait(); err != nil {
					return written, err
				}
				p.started = true
			}
			m, err := p.w.Write(b[:n])
			written += m
			p.stats.Bytes += int64(m)
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

// Flush pushes out what the current chunk has written so far, for a producer
// that flushes (a streaming upstream): pacing never holds back bytes that the
// source meant to send. It keeps a multi-byte character whole: while one is
// incomplete, the flush waits until it is complete.
func (p *Pacer) Flush() error {
	if !p.chunker.CanFlush() {
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

func (p *Pacer) wait() error {
	d := p.sched.Reserve(p.clock.Now())
	if d <= 0 {
		return p.ctx.Err()
	}
	p.stats.Waited += d
	return p.clock.Sleep(p.ctx, d)
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
