package pacing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// fakeClock advances only when slept on.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.now = c.now.Add(d)
	return nil
}

// recorder is the writer under a Pacer: it logs writes and flushes with the
// fake time at which they happened.
type recorder struct {
	clock   *fakeClock
	body    bytes.Buffer
	events  []string
	flushes []flushed
	failAt  int // fail the write that would pass this many bytes; 0: never
}

// flushed is one flush: when, and how many body bytes were out by then.
type flushed struct {
	at    time.Duration
	total int
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.failAt > 0 && r.body.Len()+len(p) > r.failAt {
		return 0, errors.New("connection reset")
	}
	r.events = append(r.events, fmt.Sprintf("%v write %q", r.clock.now.Sub(t0), p))
	return r.body.Write(p)
}

func (r *recorder) flush() error {
	r.events = append(r.events, fmt.Sprintf("%v flush", r.clock.now.Sub(t0)))
	r.flushes = append(r.flushes, flushed{r.clock.now.Sub(t0), r.body.Len()})
	return nil
}

func newTestPacer(ctx context.Context, c ChunkSize, interval time.Duration) (*Pacer, *recorder) {
	return newPlanPacer(ctx, Plan{Chunk: c, Interval: interval})
}

func newPlanPacer(ctx context.Context, plan Plan) (*Pacer, *recorder) {
	clock := &fakeClock{now: t0}
	rec := &recorder{clock: clock}
	return NewPacer(ctx, rec, rec.flush, plan, clock), rec
}

func TestPacerWritesEachChunkAtItsSlotAndFlushesIt(t *testing.T) {
	p, rec := newTestPacer(context.Background(), ChunkSize{5, Chars}, ms(100))
	// one large write, as `respond` does, is split into chunks
	if _, err := p.Write([]byte("你好,世界! Hello")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`0s write "你好,世界"`, `0s flush`,
		`100ms write "! Hel"`, `100ms flush`,
		`200ms write "lo"`, `200ms flush`,
	}
	if got := rec.events; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := p.Stats(); s.Bytes != int64(rec.body.Len()) || s.Chunks != 3 || s.Waited != ms(200) {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPacerPassesBytesThroughWithinTheSlot(t *testing.T) {
	// A chunk that arrives in several writes waits for its slot once, and is
	// flushed once, at its end; nothing is collected.
	p, rec := newTestPacer(context.Background(), ChunkSize{4, Bytes}, ms(100))
	for _, w := range []string{"ab", "cd", "e", "fgh", "i"} {
		if _, err := p.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	want := []string{
		`0s write "ab"`, `0s write "cd"`, `0s flush`,
		`100ms write "e"`, `100ms write "fgh"`, `100ms flush`,
		`200ms write "i"`, `200ms flush`,
	}
	if got := rec.events; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPacerFlushPassesOnButNeverSplitsACharacter(t *testing.T) {
	p, rec := newTestPacer(context.Background(), ChunkSize{5, Chars}, ms(100))
	p.Write([]byte("a\xe4"))
	p.Flush() // inside 你: held back until the character is whole
	p.Write([]byte("\xbd\xa0b"))
	p.Flush() // between characters: at once
	p.Write([]byte("cde"))
	p.Close()
	want := []string{
		`0s write "a\xe4"`,
		`0s write "\xbd\xa0b"`, `0s flush`, // the held flush, now that 你 is whole
		`0s flush`,
		`0s write "cd"`, `0s flush`, // the chunk a你bcd ends
		`100ms write "e"`, `100ms flush`,
	}
	if got := rec.events; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPacerStopsAtOnceWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	p, rec := newTestPacer(ctx, ChunkSize{1, Bytes}, ms(100))
	gone := errors.New("client gone")
	cancel(gone)
	n, err := p.Write([]byte("abc"))
	if !errors.Is(err, context.Canceled) && !errors.Is(err, gone) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if n != 0 || rec.body.Len() != 0 {
		t.Fatalf("wrote %d bytes after the context ended", n)
	}
}

func TestPacerReportsWriteErrors(t *testing.T) {
	p, rec := newTestPacer(context.Background(), ChunkSize{2, Bytes}, ms(10))
	rec.failAt = 4
	n, err := p.Write([]byte("abcdef"))
	if err == nil || n != 4 {
		t.Fatalf("Write = %d, %v; want 4 and the write error", n, err)
	}
}

func TestPacerReadFromPacesAndCopiesExactly(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	readers := map[string]io.Reader{
		"whole":            bytes.NewReader(body),
		"a byte at a time": iotest.OneByteReader(bytes.NewReader(body)),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			p, rec := newTestPacer(context.Background(), ChunkSize{1024, Bytes}, ms(100))
			n, err := p.ReadFrom(r)
			p.Close()
			if err != nil || n != int64(len(body)) || !bytes.Equal(rec.body.Bytes(), body) {
				t.Fatalf("ReadFrom = %d, %v; body intact: %v", n, err, bytes.Equal(rec.body.Bytes(), body))
			}
			// 10 chunks, each 100 ms after the one before
			if got := p.clock.Now().Sub(t0); got != 9*ms(100) {
				t.Fatalf("took %v, want 900ms", got)
			}
			if s := p.Stats(); s.Chunks != 10 {
				t.Fatalf("%d chunks, want 10", s.Chunks)
			}
		})
	}
}

func TestPacerReadFromReturnsReadErrors(t *testing.T) {
	p, _ := newTestPacer(context.Background(), ChunkSize{4, Bytes}, 0)
	boom := errors.New("disk on fire")
	n, err := p.ReadFrom(io.MultiReader(strings.NewReader("abcdef"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || n != 6 {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
}

func TestBufferClasses(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{1, 512}, {512, 512}, {513, 1024}, {1024, 1024}, {20000, 32768}, {32768, 32768}} {
		b := getBuffer(max(tc.size, minRead))
		if len(*b) != tc.want {
			t.Errorf("getBuffer(%d) has %d bytes, want %d", tc.size, len(*b), tc.want)
		}
		putBuffer(b)
	}
}
