package pacing

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A Trace is a link's capacity over time, in Mahimahi's packet-delivery
// format: each line is a time in milliseconds from the trace's start, an
// opportunity to deliver one packet of 1500 bytes; a time that repeats is
// more opportunities in that millisecond. An opportunity's bytes carry any
// packets that are waiting at its instant, and what no packet waits for is
// lost. The trace repeats after its last time.
type Trace struct {
	ms     []int64 // the opportunities, in order
	period int64   // ms: the last opportunity's time, when the trace repeats
}

// ParseTrace reads a trace. An error names the line: a time that is not a
// whole number of milliseconds, one that goes back, or no lines at all.
func ParseTrace(r io.Reader) (*Trace, error) {
	t := &Trace{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		ms, err := strconv.ParseInt(text, 10, 64)
		if err != nil || ms < 0 || ms > 1<<40 {
			return nil, fmt.Errorf("line %d: %q is not a time in whole milliseconds", line, text)
		}
		if n := len(t.ms); n > 0 && ms < t.ms[n-1] {
			return nil, fmt.Errorf("line %d: %d ms goes back from %d ms", line, ms, t.ms[n-1])
		}
		t.ms = append(t.ms, ms)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.ms) == 0 {
		return nil, fmt.Errorf("no delivery opportunities (want a time in milliseconds a line)")
	}
	t.period = t.ms[len(t.ms)-1]
	if t.period == 0 {
		return nil, fmt.Errorf("line %d: the last time is 0 ms: the trace would repeat at once", len(t.ms))
	}
	return t, nil
}

// Rate is the trace's mean capacity, in bytes per second.
func (t *Trace) Rate() float64 {
	return float64(len(t.ms)) * PacketSize / (float64(t.period) / 1000)
}

// rateOver is what the trace carries over the span d from from, in bytes
// per second.
func (t *Trace) rateOver(from, d time.Duration) float64 {
	return float64(t.next(from+d)-t.next(from)) * PacketSize / d.Seconds()
}

// At is when opportunity k comes, from the trace's start; k counts on over
// the trace's repeats.
func (t *Trace) At(k int64) time.Duration {
	n := int64(len(t.ms))
	return time.Duration(k/n*t.period+t.ms[k%n]) * time.Millisecond
}

// next is the first opportunity at or after d from the trace's start.
func (t *Trace) next(d time.Duration) int64 {
	n := int64(len(t.ms))
	repeat := max(d.Milliseconds()/t.period-1, 0) // At(k) is monotonic in k
	lo := repeat * n
	return lo + int64(sort.Search(int(3*n), func(j int) bool { return t.At(lo+int64(j)) >= d }))
}

// Opportunities is how many delivery opportunities come before d from the
// trace's start: what it can carry by then, in packets.
func (t *Trace) Opportunities(d time.Duration) int64 {
	return t.next(d)
}
