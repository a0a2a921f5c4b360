package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateCountsFromTheFirstByteToTheLast(t *testing.T) {
	// 1,000 bytes at once, then 4 × 1,000 bytes 100 ms apart: 4,000 bytes
	// over 400 ms after the first read.
	s := &stream{}
	for i := range 5 {
		s.reads = append(s.reads, time.Duration(i)*100*time.Millisecond+time.Second)
		s.sizes = append(s.sizes, 1000)
		s.bytes += 1000
	}
	if r, ok := s.rate(); !ok || r != 10000 {
		t.Fatalf("rate %v (%v), want 10000", r, ok)
	}
	if _, ok := (&stream{reads: []time.Duration{1}, sizes: []int{1}, bytes: 1}).rate(); ok {
		t.Fatal("a rate from one read")
	}
}

func TestDist(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if d := dist(v); d.P1 != 2 || d.P50 != 51 || d.P99 != 100 || d.Max != 100 {
		t.Fatalf("%+v", d)
	}
}

// TestStreamsAgainstAPacedServer runs the streams mode against a server that
// sends 10 pieces of 100 bytes 20 ms apart, and checks what it measures.
func TestStreamsAgainstAPacedServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 10 {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			w.Write(bytes.Repeat([]byte("x"), 100))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	res, err := runStreams(streamsRun{url: srv.URL, n: 5, rate: 5000, interval: 20 * time.Millisecond, ramp: 10 * time.Millisecond, size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 5 || res.GapMs.P50 < 19 || res.RateRatio.P50 > 1.01 || res.RateRatio.P50 < 0.5 {
		t.Fatalf("%+v", res)
	}
	var out strings.Builder
	rec := `{"label": "accuracy test 5", "result": {"Streams": 5, "OK": 5, "RateRatio": {"P1": 0.99, "P50": 1, "P99": 1.01}}}
{"label": "throughput plain 1", "result": {"MiBps": 100}}
{"label": "throughput fast 1", "result": {"MiBps": 95}}
{"label": "ttfb plain", "result": {"MedianMs": 0.2}}
{"label": "ttfb tick", "result": {"MedianMs": 0.5}}
{"label": "storm pace 5000", "result": {"Streams": 5000, "OK": 5000, "RateRatio": {"P1": 0.95, "P50": 0.999, "P99": 1.005}, "FirstByteLateMs": {"P50": 12, "P99": 1030}, "LateSeconds": 50, "LateWaits": 900, "CPUSeconds": 10, "RSSKiBStream": 40}}
`
	if err := printTable(strings.NewReader(rec), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| accuracy test 5 | 5 of 5 | -1.00% | +0.00% | +1.00% |", "| fast | 95 (95) | 95.0% |", "| tick | 0.500 ms |",
		"| storm pace 5000 | 5000 of 5000 | -5.00% / -0.10% / +0.50% | 12 / 1030 ms | 900 | 0.0100 | 2.0 | 40.0 KiB |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestClientsAreCountedTogether runs streams from two clients, each from
// an address of its own, against a server that sends each client's bytes
// at 10,000 B/s in all, whatever its streams: each client's rate is its
// streams' bytes together.
func TestClientsAreCountedTogether(t *testing.T) {
	var addrs sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		addrs.Store(host, true)
		for range 10 { // 1,000 bytes, 200 ms apart: 5,000 B/s a stream
			time.Sleep(200 * time.Millisecond)
			w.Write(bytes.Repeat([]byte("x"), 1000))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	res, err := runStreams(streamsRun{url: srv.URL, n: 4, rate: 5000, ramp: time.Millisecond, size: 10000, clients: 2, clientRate: 10000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	addrs.Range(func(any, any) bool { n++; return true })
	if n != 2 || res.Clients != 2 || res.ClientRateRatio.P50 < 0.9 || res.ClientRateRatio.P50 > 1.1 {
		t.Fatalf("%d client addresses, clients %d, client rate ratio %+v; want 2, and two streams of 5,000 B/s a client at 10,000", n, res.Clients, res.ClientRateRatio)
	}
}

func TestAShortOrFailedBodyFailsTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write(make([]byte, 100))
	}))
	defer srv.Close()
	if res, err := runStreams(streamsRun{url: srv.URL, n: 3, size: 200}); err == nil || res.OK != 0 {
		t.Errorf("100-byte bodies passed as 200: %+v", res)
	}
	if _, err := runStreams(streamsRun{url: srv.URL + "/missing", n: 2}); err == nil {
		t.Error("404s passed")
	}
	if _, err := runThroughput(srv.URL, 1, 50*time.Millisecond, 200); err == nil {
		t.Error("short bodies passed the throughput run")
	}
	if _, err := runTTFB(srv.URL+"/missing", 1); err == nil {
		t.Error("a 404 passed the ttfb run")
	}
}

// TestAStormOpensEveryStreamAtOnceAndReportsLateness runs the streams mode
// with no ramp against a server whose first byte comes 50 ms after the
// request, due at 20 ms, and whose metrics count lateness as caddy-pace's
// do.
func TestAStormOpensEveryStreamAtOnceAndReportsLateness(t *testing.T) {
	var scrapes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			late := 1.5 * float64(scrapes.Add(1)-1)
			fmt.Fprintf(w, "# HELP x\ncaddy_pace_late_seconds_total %g\ncaddy_pace_late_waits_total %g\n", late, 2*late)
			return
		}
		time.Sleep(50 * time.Millisecond)
		w.Write(bytes.Repeat([]byte("x"), 100))
	}))
	defer srv.Close()
	start := time.Now()
	res, err := runStreams(streamsRun{url: srv.URL, n: 20, size: 100, firstDue: 20 * time.Millisecond, metrics: srv.URL + "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("20 streams at once took %v: they were not opened at once", took)
	}
	if res.FirstByteLateMs.P50 < 29 || res.LateSeconds != 1.5 || res.LateWaits != 3 {
		t.Errorf("first bytes late by %+v ms, lateness %v s in %v waits; want at least 30 ms, 1.5 s in 3", res.FirstByteLateMs, res.LateSeconds, res.LateWaits)
	}
}
