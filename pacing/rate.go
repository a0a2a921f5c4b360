package pacing

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// MaxRate bounds a rate: 1 TiB per second, far above any link, and far
// below where float arithmetic on bytes would lose whole bytes.
const MaxRate = 1 << 40

// ParseRate parses a rate in bytes per second: a size such as "64KiB",
// "1MB" or "1000" (go-humanize's units: KiB = 1024, KB = 1000), or a count
// of bits with a "bit" suffix and a decimal prefix, such as "500kbit" or
// "1.5Mbit". A trailing "/s" is allowed: "64KiB/s".
func ParseRate(s string) (float64, error) {
	num, unit, err := splitNumber(s, "64KiB, 1MB, 500kbit")
	if err != nil {
		return 0, err
	}
	unit = strings.TrimSuffix(unit, "/s")
	var bps float64
	if prefix, ok := cutBits(unit); ok {
		scale, known := bitPrefixes[strings.ToLower(prefix)]
		f, ferr := strconv.ParseFloat(num, 64)
		if !known || ferr != nil {
			return 0, unknownRateUnit(s, unit)
		}
		bps = f * scale / 8
	} else {
		v, ok := parseBytes(num, unit)
		if !ok {
			return 0, unknownRateUnit(s, unit)
		}
		bps = v
	}
	if bps > MaxRate {
		return 0, fmt.Errorf("%q: at most %s per second", s, humanize.IBytes(MaxRate))
	}
	if !(bps > 0) {
		return 0, fmt.Errorf("%q: a rate must be above zero bytes per second", s)
	}
	return bps, nil
}

// cutBits strips a "bit" or "bits" suffix, in any case.
func cutBits(unit string) (prefix string, ok bool) {
	lower := strings.ToLower(unit)
	for _, suffix := range []string{"bits", "bit"} {
		if strings.HasSuffix(lower, suffix) {
			return unit[:len(unit)-len(suffix)], true
		}
	}
	return "", false
}

var bitPrefixes = map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}

// ParseSize parses a count of bytes such as "1MiB", "500 KB" or "4096";
// zero is allowed.
func ParseSize(s string) (int64, error) {
	num, unit, err := splitNumber(s, "1MiB, 500KB, 4096")
	if err != nil {
		return 0, err
	}
	v, ok := parseBytes(num, unit)
	if !ok {
		if _, bits := cutBits(strings.TrimSuffix(unit, "ps")); bits {
			return 0, fmt.Errorf("%q: unknown unit %q (want bytes or a size unit such as KiB or KB: a size is in bytes, not bits)", s, unit)
		}
		return 0, fmt.Errorf("%q: unknown unit %q (want bytes or a size unit such as KiB or KB)", s, unit)
	}
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(v), nil
}

// splitNumber splits s into the leading decimal number and the unit after
// it, refusing anything that does not start with a plain number: no sign,
// exponent, NaN or Inf.
func splitNumber(s, examples string) (num, unit string, err error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(s)
	}
	num, unit = s[:i], strings.TrimSpace(s[i:])
	if num == "" || strings.Count(num, ".") > 1 || num == "." {
		return "", "", fmt.Errorf("%q: does not start with a number (want e.g. %s)", s, examples)
	}
	return num, unit, nil
}

// parseBytes parses a number and a go-humanize size unit ("", "B", "bytes",
// "KiB", "MB"…) into bytes.
func parseBytes(num, unit string) (float64, bool) {
	if byteNames[strings.ToLower(unit)] {
		unit = "B"
	}
	v, err := humanize.ParseBigBytes(num + unit)
	if err != nil || strings.IndexFunc(unit, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0 {
		return 0, false
	}
	f, _ := v.Float64()
	return f, true
}

// unknownRateUnit is the error for a rate whose unit is neither a size nor
// bits. It names both, and says how to write a unit per second ("bps").
func unknownRateUnit(s, unit string) error {
	hint := ""
	if prefix, ok := strings.CutSuffix(unit, "Bps"); ok && (prefix == "" || bitPrefixes[strings.ToLower(prefix)] != 0) {
		hint = fmt.Sprintf("; for %s write %sB", unit, strings.ToUpper(prefix))
	} else if prefix, ok := strings.CutSuffix(strings.ToLower(unit), "bps"); ok && bitPrefixes[prefix] != 0 {
		hint = fmt.Sprintf("; for %s write %sbit", unit, strings.Replace(strings.ToUpper(prefix), "K", "k", 1))
	}
	return fmt.Errorf("%q: unknown unit %q (want bytes or a size unit such as KiB or MB, or bits such as kbit or Mbit%s)", s, unit, hint)
}

// rateGap is the time one chunk takes at a rate when no chunk size is
// configured: short enough that a stream looks smooth (nginx's limit_rate
// sends a second's worth at once), long enough that thousands of streams
// cost few wake-ups.
const rateGap = 100 * time.Millisecond

// RateChunk is the chunk used under a rate when none is configured: what the
// rate sends in 100 ms, from 1 byte to 1 MiB.
func RateChunk(bytesPerSecond float64) ChunkSize {
	n := bytesPerSecond * rateGap.Seconds()
	return ChunkSize{N: int(min(max(n, 1), 1<<20)), Unit: Bytes}
}
