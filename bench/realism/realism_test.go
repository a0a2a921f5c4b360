package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
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
