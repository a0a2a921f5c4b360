package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// record is one line that bench/run writes: a label ("accuracy pace 1000")
// and the loadclient's result.
type record struct {
	Label  string
	Result json.RawMessage
}

// printTable reads bench/run's records and prints the tables of
// BENCHMARKS.md.
func printTable(r io.Reader, w io.Writer) error {
	streams := map[string]*StreamsResult{}
	var streamLabels []string
	tput := map[string][]float64{}
	ttfb := map[string]*TTFBResult{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return err
		}
		f := strings.Fields(rec.Label)
		switch f[0] {
		case "accuracy", "gaps", "links", "memory", "storm":
			var s StreamsResult
			if err := json.Unmarshal(rec.Result, &s); err != nil {
				return err
			}
			streams[rec.Label] = &s
			streamLabels = append(streamLabels, rec.Label)
		case "throughput":
			var t ThroughputResult
			if err := json.Unmarshal(rec.Result, &t); err != nil {
				return err
			}
			tput[f[1]] = append(tput[f[1]], t.MiBps)
		case "ttfb":
			var t TTFBResult
			if err := json.Unmarshal(rec.Result, &t); err != nil {
				return err
			}
			ttfb[f[1]] = &t
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	pct := func(ratio float64) string { return fmt.Sprintf("%+.2f%%", (ratio-1)*100) }
	fmt.Fprintln(w, "| run | streams whole | rate p1 | rate p50 | rate p99 | read gap p50 / p99 / max | gap p99 ÷ interval | TTFB p50 / p99 | CPU s per 1,000 streams | peak RSS per stream |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, label := range streamLabels {
		s := streams[label]
		if strings.HasPrefix(label, "storm ") {
			continue
		}
		per1000 := s.CPUSeconds / float64(s.Streams) * 1000
		fmt.Fprintf(w, "| %s | %d of %d | %s | %s | %s | %.0f / %.0f / %.0f ms | %.2f | %.0f / %.0f ms | %.1f | %.1f KiB |\n",
			label, s.OK, s.Streams, pct(s.RateRatio.P1), pct(s.RateRatio.P50), pct(s.RateRatio.P99),
			s.GapMs.P50, s.GapMs.P99, s.GapMs.Max, s.GapRatio.P99, s.TTFBMs.P50, s.TTFBMs.P99, per1000, s.RSSKiBStream)
	}
	fmt.Fprintln(w)
	header := "| run | clients | client rate p1 | p50 | p99 |\n|---|---|---|---|---|\n"
	for _, label := range streamLabels {
		if s := streams[label]; s.Clients > 0 {
			fmt.Fprintf(w, "%s| %s | %d | %s | %s | %s |\n", header, label, s.Clients, pct(s.ClientRateRatio.P1), pct(s.ClientRateRatio.P50), pct(s.ClientRateRatio.P99))
			header = ""
		}
	}
	if header == "" {
		fmt.Fprintln(w)
	}
	header = "| storm: all streams at once | streams whole | rate from the first byte p1 / p50 / p99 | first byte late p50 / p99 | late waits the server counted | late s per stream | CPU s per 1,000 streams | peak RSS per stream |\n|---|---|---|---|---|---|---|---|\n"
	for _, label := range streamLabels {
		if s := streams[label]; strings.HasPrefix(label, "storm ") {
			fmt.Fprintf(w, "%s| %s | %d of %d | %s / %s / %s | %.0f / %.0f ms | %.0f | %.4f | %.1f | %.1f KiB |\n", header,
				label, s.OK, s.Streams, pct(s.RateRatio.P1), pct(s.RateRatio.P50), pct(s.RateRatio.P99),
				s.FirstByteLateMs.P50, s.FirstByteLateMs.P99, s.LateWaits, s.LateSeconds/float64(s.Streams),
				s.CPUSeconds/float64(s.Streams)*1000, s.RSSKiBStream)
			header = ""
		}
	}
	if header == "" {
		fmt.Fprintln(w)
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	plain := median(tput["plain"])
	fmt.Fprintln(w, "| throughput, 16 MiB files, 8 clients | MiB/s (median of rounds) | ÷ plain Caddy |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, kind := range []string{"plain", "unpaced", "fast", "nginx"} {
		if v, ok := tput[kind]; ok {
			fmt.Fprintf(w, "| %s | %.0f (%s) | %.1f%% |\n", kind, median(v), roundsText(v), median(v)/plain*100)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| time to first byte, 100 KiB file | median | p99 | added over plain Caddy |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, kind := range []string{"plain", "unpaced", "tick", "rate", "nginx"} {
		if t, ok := ttfb[kind]; ok {
			fmt.Fprintf(w, "| %s | %.3f ms | %.3f ms | %+.3f ms |\n", kind, t.MedianMs, t.P99Ms, t.MedianMs-ttfb["plain"].MedianMs)
		}
	}
	return nil
}

func roundsText(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}
