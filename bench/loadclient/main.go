// Command loadclient measures paced HTTP responses from the client's side,
// for bench/run. It has three modes:
//
//	loadclient streams -url U -streams N -rate R [-interval D] [-pids P,Q]
//	                   [-clients K -client-rate C] [-ramp D] [-first-due D]
//	                   [-metrics M]
//	    N concurrent GETs of U, opened evenly over the ramp (2 s; 0 opens
//	    them all at once, a storm), each read to the end with every Read
//	    timed. Reports, per stream, the rate from its first byte to its last
//	    over R; the gaps between successive reads (over D, if given); the
//	    time to first byte, and how much later than -first-due it came; and,
//	    for the server processes P,Q, CPU seconds used and the peak of their
//	    summed RSS above what they held before. With K clients, stream i
//	    comes from client i mod K, from a loopback address of its own
//	    (127.1.x.y), and each client's rate (all its streams' bytes, from
//	    its first byte to its last) is reported over C. With M, the URL of
//	    caddy-pace's metrics, it reports the lateness that the server
//	    counted during the run (caddy_pace_late_seconds_total and
//	    caddy_pace_late_waits_total).
//	loadclient throughput -url U [-conc C] [-duration D]
//	    C workers GET U back to back for D; reports MiB/s.
//	loadclient ttfb -url U [-n N]
//	    N sequential GETs, each closed at its first byte; reports the
//	    median time to first byte.
//	loadclient table < results.jsonl
//	    prints bench/run's results as the tables of BENCHMARKS.md.
//
// The first three print one line of JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadclient streams|throughput|ttfb -url U …")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "", "the URL to GET")
	streams := fs.Int("streams", 1, "concurrent streams")
	rate := fs.Float64("rate", 0, "the configured rate in bytes per second")
	interval := fs.Duration("interval", 0, "the configured interval, for the gap ratio")
	ramp := fs.Duration("ramp", 2*time.Second, "time over which to open the streams")
	pids := fs.String("pids", "", "server process IDs to account CPU and memory to, comma-separated")
	conc := fs.Int("conc", 8, "throughput: concurrent workers")
	duration := fs.Duration("duration", 5*time.Second, "throughput: how long to run")
	n := fs.Int("n", 200, "ttfb: requests")
	size := fs.Int64("size", 0, "the body size every response must have (0: any)")
	clients := fs.Int("clients", 0, "streams: clients, each from a loopback address of its own (0: one client)")
	clientRate := fs.Float64("client-rate", 0, "streams: each client's rate in bytes per second, with -clients")
	firstDue := fs.Duration("first-due", 0, "streams: when the first byte is due after the request, for its lateness")
	metrics := fs.String("metrics", "", "streams: the server's metrics URL, for the lateness it counted")
	fs.Parse(os.Args[2:])
	if mode == "table" {
		if err := printTable(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadclient:", err)
			os.Exit(1)
		}
		return
	}
	var out any
	var err error
	switch mode {
	case "streams":
		out, err = runStreams(streamsRun{url: *url, n: *streams, rate: *rate, interval: *interval, ramp: *ramp,
			pids: parsePids(*pids), size: *size, clients: *clients, clientRate: *clientRate, firstDue: *firstDue, metrics: *metrics})
	case "throughput":
		out, err = runThroughput(*url, *conc, *duration, *size)
	case "ttfb":
		out, err = runTTFB(*url, *n)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if out != nil {
		json.NewEncoder(os.Stdout).Encode(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadclient:", err)
		os.Exit(1)
	}
}

func parsePids(s string) []int {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if pid, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: conns,
		MaxIdleConns:        conns,
	}}
}

// clientFrom is a client whose connections come from the loopback address
// of client number c: 127.1.0.1 for the first.
func clientFrom(c, conns int) *http.Client {
	ip := net.IPv4(127, 1, byte((c+1)>>8), byte(c+1))
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	client := newClient(conns)
	client.Transport.(*http.Transport).DialContext = dialer.DialContext
	return client
}

// stream is what one GET saw.
type stream struct {
	began   time.Duration // when the request was sent, since the run began
	ttfb    time.Duration
	reads   []time.Duration // when each Read returned, since the request was sent
	sizes   []int
	bytes   int64
	failure string
}

// rate is the stream's rate from its first byte to its last: what arrived
// after the first read, over the time from the first read to the last.
func (s *stream) rate() (float64, bool) {
	if len(s.reads) < 2 {
		return 0, false
	}
	span := s.reads[len(s.reads)-1] - s.reads[0]
	if span <= 0 {
		return 0, false
	}
	return float64(s.bytes-int64(s.sizes[0])) / span.Seconds(), true
}

// fetch GETs url and reads its body to the end, timing every Read, and
// fails a body that is not size bytes (if size > 0); with firstOnly, it
// stops at the first Read, and fails an empty body.
func fetch(client *http.Client, url string, firstOnly bool, size int64) *stream {
	s := &stream{}
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		s.failure = err.Error()
		return s
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.failure = resp.Status
		return s
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			at := time.Since(start)
			if len(s.reads) == 0 {
				s.ttfb = at
			}
			s.reads = append(s.reads, at)
			s.sizes = append(s.sizes, n)
			s.bytes += int64(n)
			if firstOnly {
				return s
			}
		}
		if err == io.EOF {
			if s.bytes == 0 || size > 0 && s.bytes != size {
				s.failure = fmt.Sprintf("a body of %d bytes, want %d", s.bytes, size)
			}
			return s
		}
		if err != nil {
			s.failure = err.Error()
			return s
		}
	}
}

// Dist is a distribution's percentiles.
type Dist struct {
	P1, P50, P99, Max float64
}

func dist(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	at := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return Dist{P1: at(0.01), P50: at(0.50), P99: at(0.99), Max: v[len(v)-1]}
}

// StreamsResult is the output of the streams mode.
type StreamsResult struct {
	Streams, OK int
	Failures    map[string]int `json:",omitempty"`
	RateRatio   Dist           // the per-stream rate over the configured one
	GapMs       Dist           // gaps between successive reads, pooled over streams
	GapRatio    Dist           // the gaps over the configured interval
	TTFBMs      Dist
	// With clients: each client's rate, all its streams together, over its
	// configured one.
	Clients         int  `json:",omitempty"`
	ClientRateRatio Dist `json:",omitzero"`
	// With a first byte's due time: how much later than it each came.
	FirstByteLateMs Dist `json:",omitzero"`
	// With the server's metrics: the lateness it counted during the run.
	LateSeconds  float64 `json:",omitempty"`
	LateWaits    float64 `json:",omitempty"`
	WallSeconds  float64
	CPUSeconds   float64 // of the server processes, during the run
	PeakRSSMiB   float64 // the peak of their summed RSS above the start
	RSSKiBStream float64 // that, per stream
}

// streamsRun is what the streams mode runs: see the command's doc.
type streamsRun struct {
	url            string
	n              int
	rate           float64
	interval, ramp time.Duration
	pids           []int
	size           int64
	clients        int
	clientRate     float64
	firstDue       time.Duration
	metrics        string
}

// runStreams runs the streams; it returns an error, with the result, if
// any stream failed.
func runStreams(run streamsRun) (*StreamsResult, error) {
	late0, err := scrapeLateness(run.metrics)
	if err != nil {
		return nil, err
	}
	client := newClient(run.n)
	var perClient []*http.Client
	for c := range run.clients {
		perClient = append(perClient, clientFrom(c, (run.n+run.clients-1)/run.clients))
	}
	mem := startSampling(run.pids)
	cpu0 := cpuSeconds(run.pids)
	start := time.Now()
	results := make([]*stream, run.n)
	var wg sync.WaitGroup
	for i := range run.n {
		if run.n > 1 && run.ramp > 0 {
			// open the streams evenly over the ramp, so that the listen
			// queue takes them
			time.Sleep(time.Until(start.Add(run.ramp * time.Duration(i) / time.Duration(run.n))))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			began, c := time.Since(start), client
			if run.clients > 0 {
				c = perClient[i%run.clients]
			}
			results[i] = fetch(c, run.url, false, run.size)
			results[i].began = began
		}()
	}
	wg.Wait()
	res := &StreamsResult{Streams: run.n, WallSeconds: time.Since(start).Seconds()}
	late1, err := scrapeLateness(run.metrics)
	if err != nil {
		return nil, err
	}
	res.LateSeconds, res.LateWaits = late1[0]-late0[0], late1[1]-late0[1]
	res.CPUSeconds = cpuSeconds(run.pids) - cpu0
	peak := mem.stop()
	res.PeakRSSMiB = peak / (1 << 20)
	res.RSSKiBStream = peak / 1024 / float64(run.n)
	var ratios, gaps, gapRatios, ttfbs, firstLate []float64
	for _, s := range results {
		if s.failure != "" {
			if res.Failures == nil {
				res.Failures = make(map[string]int)
			}
			res.Failures[s.failure]++
			continue
		}
		res.OK++
		ttfbs = append(ttfbs, ms(s.ttfb))
		if run.firstDue > 0 {
			firstLate = append(firstLate, ms(s.ttfb-run.firstDue))
		}
		if r, ok := s.rate(); ok && run.rate > 0 {
			ratios = append(ratios, r/run.rate)
		}
		for i := 1; i < len(s.reads); i++ {
			g := s.reads[i] - s.reads[i-1]
			gaps = append(gaps, ms(g))
			if run.interval > 0 {
				gapRatios = append(gapRatios, float64(g)/float64(run.interval))
			}
		}
	}
	res.RateRatio, res.GapMs, res.GapRatio, res.TTFBMs = dist(ratios), dist(gaps), dist(gapRatios), dist(ttfbs)
	if run.firstDue > 0 {
		res.FirstByteLateMs = dist(firstLate)
	}
	if run.clients > 0 && run.clientRate > 0 {
		res.Clients = run.clients
		res.ClientRateRatio = dist(clientRates(results, run.clients, run.clientRate))
	}
	if res.OK < run.n {
		return res, fmt.Errorf("%d of %d streams failed: %v", run.n-res.OK, run.n, res.Failures)
	}
	return res, nil
}

// clientRates is each client's rate over want: the bytes of all its streams
// after its first read, over the time from its first read to its last.
func clientRates(results []*stream, clients int, want float64) []float64 {
	type span struct {
		first, last time.Duration
		firstBytes  int
		bytes       int64
	}
	spans := make([]*span, clients)
	for i, s := range results {
		if s.failure != "" || len(s.reads) == 0 {
			continue
		}
		sp := spans[i%clients]
		if sp == nil {
			sp = &span{first: time.Duration(1 << 62)}
			spans[i%clients] = sp
		}
		if first := s.began + s.reads[0]; first < sp.first {
			sp.first, sp.firstBytes = first, s.sizes[0]
		}
		sp.last = max(sp.last, s.began+s.reads[len(s.reads)-1])
		sp.bytes += s.bytes
	}
	var ratios []float64
	for _, sp := range spans {
		if sp != nil && sp.last > sp.first {
			ratios = append(ratios, float64(sp.bytes-int64(sp.firstBytes))/(sp.last-sp.first).Seconds()/want)
		}
	}
	return ratios
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ThroughputResult is the output of the throughput mode.
type ThroughputResult struct {
	MiBps    float64
	Requests int64
	Failures int64
}

// runThroughput returns an error, with the result, if any request failed or
// had a body that was not size bytes (if size > 0).
func runThroughput(url string, conc int, d time.Duration, size int64) (*ThroughputResult, error) {
	client := newClient(conc)
	var bytes, requests, failures atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for time.Now().Before(deadline) {
				resp, err := client.Get(url)
				if err != nil {
					failures.Add(1)
					continue
				}
				var got int64
				for {
					n, err := resp.Body.Read(buf)
					got += int64(n)
					if err != nil {
						if err != io.EOF || resp.StatusCode != http.StatusOK || size > 0 && got != size {
							failures.Add(1)
						}
						break
					}
				}
				bytes.Add(got)
				resp.Body.Close()
				requests.Add(1)
			}
		}()
	}
	wg.Wait()
	res := &ThroughputResult{
		MiBps:    float64(bytes.Load()) / (1 << 20) / time.Since(start).Seconds(),
		Requests: requests.Load(),
		Failures: failures.Load(),
	}
	if res.Failures > 0 {
		return res, fmt.Errorf("%d requests failed", res.Failures)
	}
	return res, nil
}

// TTFBResult is the output of the ttfb mode.
type TTFBResult struct {
	MedianMs, P99Ms float64
}

func runTTFB(url string, n int) (*TTFBResult, error) {
	client := newClient(1)
	var ttfbs []float64
	for range n {
		s := fetch(client, url, true, 0)
		if s.failure != "" {
			return nil, fmt.Errorf("GET %s: %s", url, s.failure)
		}
		ttfbs = append(ttfbs, ms(s.ttfb))
	}
	d := dist(ttfbs)
	return &TTFBResult{MedianMs: d.P50, P99Ms: d.P99}, nil
}

// scrapeLateness reads caddy_pace_late_seconds_total and
// caddy_pace_late_waits_total from the metrics at url (zeros if url is
// empty).
func scrapeLateness(url string) ([2]float64, error) {
	var got [2]float64
	if url == "" {
		return got, nil
	}
	resp, err := http.Get(url)
	if err != nil {
		return got, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return got, fmt.Errorf("metrics: %w", err)
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		for i, name := range []string{"caddy_pace_late_seconds_total ", "caddy_pace_late_waits_total "} {
			if v, ok := strings.CutPrefix(line, name); ok {
				if got[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return got, fmt.Errorf("metrics: %q: %w", line, err)
				}
				found++
			}
		}
	}
	if found != 2 {
		return got, fmt.Errorf("metrics: %s has no caddy_pace_late_seconds_total or caddy_pace_late_waits_total", url)
	}
	return got, nil
}
