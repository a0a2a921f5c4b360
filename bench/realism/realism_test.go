package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// TestAStageIsARateAQueueAndADelay checks the reference link's stage
// against what netem's delay, rate and limit do.
func TestAStageIsARateAQueueAndADelay(t *testing.T) {
	// 1,500 bytes at 150,000 B/s: 10 ms a packet; 50 ms of delay; 3
	// packets of queue.
	st := stage{rate: 150_000, delay: ms(50), limit: 3}
	for i, tc := range []struct {
		arrive    time.Duration
		delivered time.Duration // 0: dropped
	}{
		{0, ms(60)},        // alone: 10 ms on the wire, then 50 ms
		{0, ms(70)},        // behind it
		{0, ms(80)},        // the queue holds 3 (1 on the wire, 2 waiting)
		{ms(1), 0},         // a fourth is dropped
		{ms(15), ms(90)},   // the first has left: room again
		{ms(100), ms(160)}, // the link is idle again: no credit
	} {
		at, ok := st.admit(t0.Add(tc.arrive), 1500)
		if got := at.Sub(t0); ok != (tc.delivered > 0) || ok && got != tc.delivered {
			t.Errorf("packet %d, arriving at %v: delivered at %v (kept %v); want %v", i, tc.arrive, got, ok, tc.delivered)
		}
	}
}

// TestAStageFollowsATrace checks the stage with a trace against what
// Mahimahi's mm-link does: an opportunity carries 1500 bytes of what is
// waiting, a packet may span two, and unused opportunities are lost.
func TestAStageFollowsATrace(t *testing.T) {
	tr, err := pacing.ParseTrace(strings.NewReader("10\n10\n20\n40\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := stage{trace: tr, delay: ms(5), limit: 100}
	for i, tc := range []struct {
		arrive    time.Duration // from the first packet, which starts the trace
		size      int
		delivered time.Duration
	}{
		{0, 1000, ms(15)},      // the first opportunity, at 10 ms, then 5 ms of delay
		{ms(1), 1000, ms(15)},  // the first's last 500 bytes and 500 of the second, also at 10 ms
		{ms(2), 1000, ms(15)},  // the second's last 1000
		{ms(2), 1000, ms(25)},  // the third, at 20 ms
		{ms(30), 100, ms(45)},  // the rest of the third came before it, lost; the fourth is at 40 ms
		{ms(50), 3000, ms(55)}, // the trace repeats every 40 ms: its two at 50 ms carry it
		{ms(51), 100, ms(65)},  // and the next is at 60 ms
	} {
		at, ok := st.admit(t0.Add(tc.arrive), tc.size)
		if got := at.Sub(t0); !ok || got != tc.delivered {
			t.Errorf("packet %d of %d bytes, arriving at %v: delivered at %v (kept %v); want %v", i, tc.size, tc.arrive, got, ok, tc.delivered)
		}
	}
}

// TestADownloadIsCountedFromItsFirstBytes checks fromFirstByte on a
// download that carries every opportunity of the trace from 100 ms on, each
// arriving half a round trip after it: it is exactly what the trace
// carries at every second from its first bytes, and counted from the
// request it is short by what came before them.
func TestADownloadIsCountedFromItsFirstBytes(t *testing.T) {
	tr, err := pacing.ParseTrace(strings.NewReader(switchingTrace()))
	if err != nil {
		t.Fatal(err)
	}
	var r loadResult
	var n int64
	for k := tr.Opportunities(ms(100)); n < 4_000_000; k++ {
		n += pacing.SegmentSize
		at := tr.At(k) + traceRTT/2
		r.Series = append(r.Series, arrived{float64(at) / float64(time.Millisecond), n})
		for len(r.BySecond) < int(at/time.Second) {
			r.BySecond = append(r.BySecond, n-pacing.SegmentSize)
		}
	}
	got, want := fromFirstByte(tr, r)
	if len(got) != 4 {
		t.Fatalf("%d seconds counted, want 4 (the download lasts %.0f ms from its first bytes)", len(got), r.Series[len(r.Series)-1].Ms-r.Series[0].Ms)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("second %d from the first bytes: %.0f arrived, the trace carries %.0f", i+1, got[i], want[i])
		}
	}
	got, want = fromRequest(tr, r)
	if len(got) != 4 || want[0]-got[0] < 0.1*250_000*1448/1500 {
		t.Errorf("from the request, by 1 s: %.0f arrived of %.0f, want 100 ms and a half round trip of 2 Mbit/s short", got[0], want[0])
	}
}

func TestTheCellularTraceIsTheSameBoundedAndBursty(t *testing.T) {
	text := cellularTrace()
	if cellularTrace() != text {
		t.Fatal("two runs made two traces")
	}
	tr, err := pacing.ParseTrace(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	// Every 200 ms at its rate, give or take what a burst carries over.
	for at := time.Duration(0); at < 30*time.Second; at += 200 * time.Millisecond {
		mbit := float64(tr.Opportunities(at+200*time.Millisecond)-tr.Opportunities(at)) * 1500 * 8 / 0.2 / 1e6
		if mbit < 0.4 || mbit > 41 {
			t.Errorf("%v to %v: %.2f Mbit/s, want 0.5 to 40", at, at+200*time.Millisecond, mbit)
		}
	}
	// Bursts: milliseconds with several opportunities, and milliseconds
	// with none between two that have some.
	lines := strings.Fields(text)
	many, gaps := 0, 0
	for i := 1; i < len(lines); i++ {
		a, _ := strconv.Atoi(lines[i-1])
		b, _ := strconv.Atoi(lines[i])
		if a == b {
			many++
		} else if b > a+1 {
			gaps++
		}
	}
	if many < len(lines)/10 || gaps < 1000 {
		t.Errorf("%d repeated milliseconds and %d gaps in %d opportunities: not bursty", many, gaps, len(lines))
	}
}

func TestTheSiteWeighsWhatItSays(t *testing.T) {
	dir := t.TempDir()
	if err := writeSite(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if p.name == "typical" && p.bytes != 1_008_000 {
			t.Errorf("the typical page weighs %d bytes, want 1,008,000", p.bytes)
		}
	}
	for name, size := range map[string]int{"img/s00.png": 2048, "img/big.png": 2_000_000, "img/t11.png": 140_000, "font.woff2": 60_000} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(data) != size {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(data), err, size)
			continue
		}
		if filepath.Ext(name) == ".png" {
			if _, err := png.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("%s does not decode: %v", name, err)
			}
		}
	}
}
