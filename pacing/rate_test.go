package pacing

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want float64
	}{
		{"64KiB", 65536},
		{"64 KiB", 65536},
		{"64KiB/s", 65536},
		{"1MB", 1e6},
		{"1.5MB", 1.5e6},
		{"1000", 1000},
		{"1000 bytes", 1000},
		{"500kbit", 62500},
		{"1.5Mbit", 187500},
		{"8bit", 1},
		{"2 Gbits", 2.5e8},
		{"180000", 180000},
	}
	for _, tc := range good {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, mention string }{
		{"", "number"},
		{"fast", "number"},
		{"0", "above zero"},
		{"0KiB", "above zero"},
		{"-1KiB", "number"},
		{"NaN", "number"},
		{"Inf", "number"},
		{"1e9", "unknown unit"},
		{"10 furlongs", "unknown unit"},
		{"10 Xbit", "unknown unit"},
		{"2TiB", "at most"},
		{"99999999999999999999999", "at most"},
		{"1.2.3KiB", "number"},
		{"1KiB\x00", "unknown unit"},
		{"1mbps", "for mbps write Mbit"},
		{"20kbps", "for kbps write kbit"},
		{"1MBps", "for MBps write MB"},
	}
	for _, tc := range bad {
		_, err := ParseRate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), strconv.Quote(tc.in)) {
			t.Errorf("ParseRate(%q) error = %v; want one quoting the value and mentioning %q", tc.in, err, tc.mention)
		}
		// An unknown unit, whatever it is, is met with both kinds that work.
		if msg := fmt.Sprint(err); strings.Contains(msg, "unknown unit") && !(strings.Contains(msg, "KiB") && strings.Contains(msg, "Mbit")) {
			t.Errorf("ParseRate(%q) error = %v; want it to name both size and bit units", tc.in, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1MiB": 1 << 20, "500 KB": 500000, "4096": 4096, "1 byte": 1} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1 parsec", "999999999999999999999999", "NaN"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	if _, err := ParseSize("1Mbit"); err == nil || !strings.Contains(err.Error(), "a size is in bytes, not bits") {
		t.Errorf("ParseSize(1Mbit) error = %v; want it to say a size is in bytes", err)
	}
}

func TestRateChunk(t *testing.T) {
	for rate, want := range map[float64]int{1: 1, 10: 1, 100: 10, 20480: 2048, 180000: 18000, 1e12: 1 << 20} {
		if got := RateChunk(rate); got != (ChunkSize{want, Bytes}) {
			t.Errorf("RateChunk(%v) = %v, want %d bytes", rate, got, want)
		}
	}
}
