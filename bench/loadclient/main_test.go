package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	res, err := runStreams(srv.URL, 5, 5000, 20*time.Millisecond, 10*time.Millisecond, nil, 1000, 0, 0)
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
`
	if err := printTable(strings.NewReader(rec), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| accuracy test 5 | 5 of 5 | -1.00% | +0.00% | +1.00% |", "| fast | 95 (95) | 95.0% |", "| tick | 0.500 ms |"} {
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
	res, err := runStreams(srv.URL, 4, 5000, 0, time.Millisecond, nil, 10000, 2, 10000)
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
	if res, err := runStreams(srv.URL, 3, 0, 0, 0, nil, 200, 0, 0); err == nil || res.OK != 0 {
		t.Errorf("100-byte bodies passed as 200: %+v", res)
	}
	if _, err := runStreams(srv.URL+"/missing", 2, 0, 0, 0, nil, 0, 0, 0); err == nil {
		t.Error("404s passed")
	}
	if _, err := runThroughput(srv.URL, 1, 50*time.Millisecond, 200); err == nil {
		t.Error("short bodies passed the throughput run")
	}
	if _, err := runTTFB(srv.URL+"/missing", 1); err == nil {
		t.Error("a 404 passed the ttfb run")
	}
}
