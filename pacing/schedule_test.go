package pacing

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSchedule(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		ready    []time.Duration // when each chunk is ready, from t0
		want     []time.Duration // when each chunk may leave, from t0
	}{
		{"no interval sends everything at once", 0,
			[]time.Duration{0, 0, ms(5)}, []time.Duration{0, 0, ms(5)}},
		{"first chunk at once, then one per interval", ms(100),
			[]time.Duration{0, 0, 0, 0}, []time.Duration{0, ms(100), ms(200), ms(300)}},
		{"late wake-ups do not add up: the grid is absolute", ms(100),
			// each chunk is ready 7 ms after its slot (a late timer and a slow write)
			[]time.Duration{0, ms(107), ms(207), ms(307)}, []time.Duration{0, ms(107), ms(207), ms(307)}},
		{"a chunk late by at most CatchUp keeps the grid", ms(100),
			[]time.Duration{0, ms(100) + CatchUp, ms(100) + CatchUp}, []time.Duration{0, ms(100) + CatchUp, ms(200)}},
		{"a chunk later than that has lost its lateness: no burst follows it", ms(100),
			[]time.Duration{0, ms(190), ms(190)}, []time.Duration{0, ms(190), ms(290)}},
		{"a source slower than the pace is not delayed and not followed by a burst", ms(100),
			[]time.Duration{0, ms(500), ms(500), ms(500)}, []time.Duration{0, ms(500), ms(600), ms(700)}},
		{"the anchor is the first chunk, not the start of the response", ms(100),
			[]time.Duration{ms(40), ms(40)}, []time.Duration{ms(40), ms(140)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Interval: tc.interval}
			for i, ready := range tc.ready {
				now := t0.Add(ready)
				leave := ready + s.Reserve(now)
				if leave != tc.want[i] {
					t.Errorf("chunk %d ready at %v leaves at %v, want %v", i, ready, leave, tc.want[i])
				}
			}
		})
	}
}

func TestScheduleLongBodyHasNoDrift(t *testing.T) {
	s := Schedule{Interval: ms(100)}
	now := t0
	for k := range 10000 {
		now = now.Add(s.Reserve(now))
		if k%3 == 0 { // some chunks wake up late
			now = now.Add(ms(9))
		}
	}
	// chunk 9999 left at its slot 999.9 s in; the last late wake-up adds 9 ms
	if got, want := now.Sub(t0), 9999*ms(100)+ms(9); got != want {
		t.Fatalf("10000 chunks took %v, want %v", got, want)
	}
}
