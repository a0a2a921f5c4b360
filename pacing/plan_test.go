package pacing

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// pace writes body through a Pacer with plan on a fake clock, in writes of
// at most step bytes (0: one write), and returns the flushes it made.
func pace(t *testing.T, plan Plan, body []byte, step int) ([]flushed, Stats) {
	t.Helper()
	p, rec := newPlanPacer(context.Background(), plan)
	for rest := body; len(rest) > 0; {
		k := len(rest)
		if step > 0 {
			k = min(step, k)
		}
		if _, err := p.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.body.Bytes(), body) {
		t.Fatal("body changed on its way through")
	}
	return rec.flushes, p.Stats()
}

func TestRateSendsEachChunkWhenTheLinkWouldHaveCarriedIt(t *testing.T) {
	// 100 KiB at 20 KiB/s: 50 chunks of 2 KiB (100 ms of the rate), chunk k
	// out at (k+1) × 100 ms, so the whole body takes exactly 5 s.
	rate := 20 * 1024.0
	plan := Plan{Chunk: RateChunk(rate), Rate: rate}
	if plan.Chunk != (ChunkSize{2048, Bytes}) {
		t.Fatalf("RateChunk(20KiB/s) = %v, want 2KiB", plan.Chunk)
	}
	for _, step := range []int{0, 100, 4096} { // one write, small writes, large writes
		flushes, stats := pace(t, plan, make([]byte, 100<<10), step)
		if len(flushes) != 50 {
			t.Fatalf("step %d: %d flushes, want 50", step, len(flushes))
		}
		for k, f := range flushes {
			if want := time.Duration(k+1) * ms(100); f.at != want || f.total != (k+1)*2048 {
				t.Fatalf("step %d: chunk %d out at %v with %d bytes, want %v and %d", step, k, f.at, f.total, want, (k+1)*2048)
			}
		}
		if stats.Waited != 5*time.Second {
			t.Fatalf("waited %v, want 5s", stats.Waited)
		}
	}
}

func TestRateAndIntervalTheSlowerWins(t *testing.T) {
	body := make([]byte, 10*1024)
	for _, tc := range []struct {
		name string
		rate float64
		gap  time.Duration
	}{
		{"the interval is slower", 20 * 1024, ms(100)}, // 1 KiB per 50 ms, held to one per 100 ms
		{"the rate is slower", 5 * 1024, ms(200)},      // 1 KiB per 200 ms
	} {
		t.Run(tc.name, func(t *testing.T) {
			flushes, _ := pace(t, Plan{Chunk: ChunkSize{1024, Bytes}, Interval: ms(100), Rate: tc.rate}, body, 0)
			for k := 1; k < len(flushes); k++ {
				if gap := flushes[k].at - flushes[k-1].at; gap != tc.gap {
					t.Fatalf("gap %d is %v, want %v", k, gap, tc.gap)
				}
			}
		})
	}
}

func TestRateWithAChunkLargerThanItsDefault(t *testing.T) {
	// 64 KiB chunks at 16 KiB/s: each chunk out whole, every 4 s.
	flushes, _ := pace(t, Plan{Chunk: ChunkSize{64 << 10, Bytes}, Rate: 16 << 10}, make([]byte, 200<<10), 32<<10)
	want := []flushed{{4 * time.Second, 64 << 10}, {8 * time.Second, 128 << 10}, {12 * time.Second, 192 << 10}, {12500 * ms(1), 200 << 10}}
	if !equalFlushes(flushes, want) {
		t.Fatalf("flushes %v, want %v", flushes, want)
	}
}

func TestRateCountsTheBytesOfEveryUnit(t *testing.T) {
	// 2 chars a chunk at 10 bytes/s: 你好 is 6 bytes (600 ms), "ab" 2 (200 ms).
	flushes, _ := pace(t, Plan{Chunk: ChunkSize{2, Chars}, Rate: 10}, []byte("你好ab你"), 0)
	want := []flushed{{ms(600), 6}, {ms(800), 8}, {ms(1100), 11}}
	if !equalFlushes(flushes, want) {
		t.Fatalf("flushes %v, want %v", flushes, want)
	}
	// A line longer than the budget's burst goes out piece by piece at the
	// rate, not at once: 1 line of 1000 bytes at 100 B/s takes 10 s.
	flushes, stats := pace(t, Plan{Chunk: ChunkSize{1, Lines}, Rate: 100}, append(bytes.Repeat([]byte("x"), 999), '\n'), 0)
	if len(flushes) != 1 || flushes[0].at != 10*time.Second || stats.Waited != 10*time.Second {
		t.Fatalf("flushes %v, waited %v; want one at 10s", flushes, stats.Waited)
	}
}

func TestRateGivesASlowSourceNoCreditAndNoExtraDelay(t *testing.T) {
	// The source hands over a chunk 200 ms after the last one left, slower
	// than the 100 ms the rate asks for: each chunk leaves 100 ms after it
	// comes, when the link has carried it. Its pause earned it no credit,
	// and cost it nothing either.
	clock := &fakeClock{now: t0}
	rec := &recorder{clock: clock}
	p := NewPacer(context.Background(), rec, rec.flush, Plan{Chunk: ChunkSize{100, Bytes}, Rate: 1000}, clock)
	for range 5 {
		p.Write(make([]byte, 100))
		clock.now = clock.now.Add(ms(200))
	}
	p.Close()
	want := []flushed{{ms(100), 100}, {ms(400), 200}, {ms(700), 300}, {ms(1000), 400}, {ms(1300), 500}}
	if !equalFlushes(rec.flushes, want) {
		t.Fatalf("flushes %v, want %v", rec.flushes, want)
	}
}

func TestJitterVariesGapsAndKeepsTheMean(t *testing.T) {
	const n, interval, jitter = 2000, 100 * time.Millisecond, 0.2
	rng := rand.New(rand.NewPCG(1, 2))
	plan := Plan{Chunk: ChunkSize{1, Bytes}, Interval: interval, Jitter: jitter, Rand: rng.Float64}
	flushes, _ := pace(t, plan, make([]byte, n), 0)
	var minGap, maxGap time.Duration = time.Hour, 0
	for k := 1; k < n; k++ {
		gap := flushes[k].at - flushes[k-1].at
		minGap, maxGap = min(minGap, gap), max(maxGap, gap)
	}
	lo, hi := time.Duration(float64(interval)*(1-jitter)), time.Duration(float64(interval)*(1+jitter))
	if minGap < lo || maxGap > hi {
		t.Fatalf("gaps from %v to %v, want within %v–%v", minGap, maxGap, lo, hi)
	}
	if maxGap-minGap < interval/5 { // the spread is up to 2 × 20 ms
		t.Fatalf("gaps from %v to %v: hardly any jitter", minGap, maxGap)
	}
	// The last chunk is off its slot by at most half the jitter of one gap:
	// offsets do not add up.
	slot := time.Duration(n-1) * interval
	if off := flushes[n-1].at - slot; off < -interval/10 || off > interval/10 {
		t.Fatalf("last chunk %v off its slot after %d chunks", off, n)
	}
	t.Logf("%d gaps of %v ± 20%%: from %v to %v, mean %v", n-1, interval, minGap, maxGap, flushes[n-1].at/time.Duration(n-1))
}

func TestJitterUnderARate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	plan := Plan{Chunk: ChunkSize{100, Bytes}, Rate: 1000, Jitter: 0.5, Rand: rng.Float64}
	flushes, _ := pace(t, plan, make([]byte, 100*500), 0)
	varied := false
	for k := 1; k < len(flushes); k++ {
		gap := flushes[k].at - flushes[k-1].at
		if gap < ms(50) || gap > ms(150) {
			t.Fatalf("gap %d is %v, want 100ms ± 50%%", k, gap)
		}
		varied = varied || gap != ms(100)
	}
	if end := flushes[len(flushes)-1].at; !varied || end < ms(49975) || end > ms(50025) {
		t.Fatalf("varied %v, ends at %v; want varied gaps ending at 50s ± 25ms", varied, end)
	}
}

func TestAfterSendsTheFirstBytesUnpaced(t *testing.T) {
	// The first 3 KiB at once; pacing starts with the chunk at 3 KiB, which
	// anchors the schedule.
	flushes, _ := pace(t, Plan{Chunk: ChunkSize{1024, Bytes}, Interval: ms(100), After: 3 << 10}, make([]byte, 6<<10), 0)
	want := []flushed{{0, 1024}, {0, 2048}, {0, 3072}, {0, 4096}, {ms(100), 5120}, {ms(200), 6144}}
	if !equalFlushes(flushes, want) {
		t.Fatalf("flushes %v, want %v", flushes, want)
	}
	// Under a rate, the bytes past After are paced from there: 3 KiB at
	// 10 KiB/s.
	flushes, _ = pace(t, Plan{Chunk: ChunkSize{1024, Bytes}, Rate: 10 << 10, After: 1500}, make([]byte, 5<<10), 0)
	want = []flushed{{0, 1024}, {0, 2048}, {ms(100), 3072}, {ms(200), 4096}, {ms(300), 5120}}
	if !equalFlushes(flushes, want) {
		t.Fatalf("flushes %v, want %v (the chunk holding byte 1500 is unpaced whole)", flushes, want)
	}
}

func TestDeadlineSendsTheRestUnpaced(t *testing.T) {
	plan := Plan{Chunk: ChunkSize{10, Bytes}, Interval: ms(100), Deadline: t0.Add(ms(250))}
	body := []byte(strings.Repeat("0123456789", 10))
	flushes, stats := pace(t, plan, body, 0)
	// chunks at 0, 100, 200; at 250 ms the chunk due at 300, then the rest
	// at once, in one flush
	want := []flushed{{0, 10}, {ms(100), 20}, {ms(200), 30}, {ms(250), 40}, {ms(250), 100}}
	if !equalFlushes(flushes, want) || !stats.Deadline || stats.Waited != ms(250) {
		t.Fatalf("flushes %v, stats %+v; want %v and the deadline reached", flushes, stats, want)
	}
	// A deadline that is never reached changes nothing.
	plan.Deadline = t0.Add(time.Hour)
	if _, stats := pace(t, plan, body, 0); stats.Deadline || stats.Chunks != 10 {
		t.Fatalf("stats %+v, want 10 chunks and no deadline", stats)
	}
}

func TestDeadlineBoundsAnAbsurdRate(t *testing.T) {
	// 1 byte per second on 1 MB would take 12 days; the deadline ends it.
	plan := Plan{Chunk: ChunkSize{1, Bytes}, Rate: 1, Deadline: t0.Add(2 * time.Second)}
	flushes, stats := pace(t, plan, make([]byte, 1e6), 0)
	if !stats.Deadline || flushes[len(flushes)-1] != (flushed{2 * time.Second, 1e6}) {
		t.Fatalf("last flush %v, stats %+v", flushes[len(flushes)-1], stats)
	}
}

func equalFlushes(a, b []flushed) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lateClock is a fake clock whose sleeps overrun: the nth Sleep by late[n].
type lateClock struct {
	fakeClock
	late   map[int]time.Duration
	sleeps int
}

func (c *lateClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps++
	return c.fakeClock.Sleep(ctx, d+c.late[c.sleeps])
}

func TestARateIsACeilingAfterThePacerRanLate(t *testing.T) {
	// 100 chunks of 128 bytes at 1,280 B/s: 10 s. The 10th sleep overruns
	// (a loaded machine): the time is lost, as on a link, and the next
	// chunks keep the rate from where the stream is: the body takes that
	// much longer, and the Pacer counts the lateness. An overrun within
	// CatchUp is made up for.
	for _, tc := range []struct {
		late, want time.Duration
		lateChunks int64
	}{{ms(300), ms(10300), 1}, {3 * time.Second, 13 * time.Second, 1}, {CatchUp, 10 * time.Second, 0}} {
		clock := &lateClock{fakeClock: fakeClock{now: t0}, late: map[int]time.Duration{10: tc.late}}
		rec := &recorder{clock: &clock.fakeClock}
		p := NewPacer(context.Background(), rec, rec.flush, Plan{Chunk: ChunkSize{128, Bytes}, Rate: 1280}, clock)
		if _, err := p.ReadFrom(bytes.NewReader(make([]byte, 12800))); err != nil {
			t.Fatal(err)
		}
		p.Close()
		last := rec.flushes[len(rec.flushes)-1]
		if last.at != tc.want || last.total != 12800 {
			t.Errorf("late %v: the last chunk left at %v, want %v", tc.late, last.at, tc.want)
		}
		st := p.Stats()
		if wantLate := time.Duration(tc.lateChunks) * tc.late; st.Late != wantLate || st.LateChunks != tc.lateChunks {
			t.Errorf("late %v: counted %v in %d chunks, want %v in %d", tc.late, st.Late, st.LateChunks, wantLate, tc.lateChunks)
		}
		// After the 300 ms overrun of chunk 9's wait, chunk 9 leaves at
		// 1.3 s and every later one a chunk's time after the one before.
		if tc.late == ms(300) {
			var at []time.Duration
			for _, f := range rec.flushes[8:14] {
				at = append(at, f.at)
			}
			if want := []time.Duration{ms(900), ms(1300), ms(1400), ms(1500), ms(1600), ms(1700)}; !slices.Equal(at, want) {
				t.Errorf("chunks 8 to 13 left at %v, want %v", at, want)
			}
		}
	}
}

func TestAStreamWhoseClockIsStarvedNeverExceedsItsRateAfterwards(t *testing.T) {
	// The process is starved for several chunks at a time, again and
	// again: sleeps overrun by 250 ms to 1.7 s. Over every span from one
	// flush to a later one at least a chunk's time on, the bytes flushed
	// are at most what the rate carries in it; from the first byte too.
	// The lateness is counted, all of it.
	for _, plan := range []Plan{
		{Chunk: ChunkSize{128, Bytes}, Rate: 1280},
		{Chunk: ChunkSize{128, Bytes}, Interval: ms(100)},
		{Chunk: ChunkSize{128, Bytes}, Interval: ms(100), Rate: 1280},
		{Chunk: RateChunk(1280), Rate: 1280}, // the rate's own chunks
	} {
		late := map[int]time.Duration{3: ms(250), 4: ms(400), 17: 1700 * time.Millisecond, 30: ms(333), 31: ms(333), 32: ms(333)}
		var want time.Duration
		for _, d := range late {
			want += d
		}
		clock := &lateClock{fakeClock: fakeClock{now: t0}, late: late}
		rec := &recorder{clock: &clock.fakeClock}
		p := NewPacer(context.Background(), rec, rec.flush, plan, clock)
		if _, err := p.ReadFrom(bytes.NewReader(make([]byte, 6400))); err != nil {
			t.Fatal(err)
		}
		p.Close()
		chunk := 128 / 1280.0 // seconds
		fl := rec.flushes
		for i := range fl {
			for j := i + 1; j < len(fl); j++ {
				span := (fl[j].at - fl[i].at).Seconds()
				if span < chunk {
					continue
				}
				if bytes := fl[j].total - fl[i].total; float64(bytes) > 1280*span+1e-6 {
					t.Fatalf("%+v: %d bytes from %v to %v, more than the rate carries in %.3f s", plan, bytes, fl[i].at, fl[j].at, span)
				}
			}
		}
		if st := p.Stats(); st.Late != want || st.LateChunks != int64(len(late)) {
			t.Errorf("%+v: counted %v late in %d chunks, want %v in %d", plan, st.Late, st.LateChunks, want, len(late))
		}
		if end, least := fl[len(fl)-1].at, 5*time.Second-ms(100)+want; end < least {
			t.Errorf("%+v: the body ended at %v, before %v: lateness was made up for", plan, end, least)
		}
	}
}
