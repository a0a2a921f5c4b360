package pace

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// testUpstream serves what the option tests pace:
//
//	/bytes/<n>        n bytes of 'x', with Content-Length
//	/text             sampleText, text/plain
//	/sse              sseEvents as Server-Sent Events, flushed at once
//	/stream/<n>       n bytes of "x", in writes of 1,000, with no Content-Length
//	/upload           reads the body, answers with its size and how long it took
//	/status/<code>    that status, with a 1 KiB body
func testUpstream(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Header().Set("Content-Type", "application/x-test")
		w.Write(bytes.Repeat([]byte("x"), n))
	})
	mux.HandleFunc("/stream/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Type", "application/x-test")
		for ; n > 0; n -= 1000 {
			w.Write(bytes.Repeat([]byte("x"), min(n, 1000)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, sampleText)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseStream)
		w.(http.Flusher).Flush()
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %d", n, time.Since(start).Milliseconds())
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		w.Write(bytes.Repeat([]byte("s"), 1024))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

const sampleText = "The quick brown fox\njumps over\nthe lazy dog.\n你好 世界\n"

const sseStream = "data: one\n\nid: 2\ndata: two\n\n: a comment\n\ndata: three\ndata: more\n\n"

// pacedProxy starts a Caddy that proxies to a test upstream through the
// given pace directive (with its block), streaming, and returns its base URL.
func pacedProxy(t *testing.T, pace string) string {
	t.Helper()
	up := testUpstream(t)
	return startCaddyfile(t, "ADDR {\n"+pace+"\nreverse_proxy "+up+" {\n flush_interval -1\n}\n}")
}

// gaps returns the smallest and largest time between successive reads.
func gaps(r *timedResponse) (smallest, largest time.Duration) {
	smallest = time.Hour
	for i := 1; i < len(r.reads); i++ {
		g := r.reads[i].at - r.reads[i-1].at
		smallest, largest = min(smallest, g), max(largest, g)
	}
	return smallest, largest
}

// measuredRate is the rate of a body from its first read to its last: the
// bytes after the first read over the time between them.
func measuredRate(r *timedResponse) float64 {
	first, last := r.reads[0], r.reads[len(r.reads)-1]
	return float64(len(r.body)-len(first.data)) / (last.at - first.at).Seconds()
}

func TestRate100KiBAt20KiBpsTakesFiveSecondsSmoothly(t *testing.T) {
	base := pacedProxy(t, "pace {\n rate 20KiB\n}")
	r := get(t, base+"/bytes/102400")
	if r.err != nil || len(r.body) != 102400 {
		t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
	}
	_, largest := gaps(r)
	off := (r.total.Seconds() - 5) / 5 * 100
	t.Logf("100 KiB at 20 KiB/s: %v (%+.2f%% off 5 s), %d reads, largest gap %v, first byte after %v",
		r.total, off, len(r.reads), largest, r.ttfb)
	if !within(r.total, 5*time.Second, 50*time.Millisecond, slack) {
		t.Errorf("took %v, want 5 s", r.total)
	}
	if len(r.reads) < 45 || largest > 300*time.Millisecond+slack {
		t.Errorf("%d reads, largest gap %v: not smooth", len(r.reads), largest)
	}
}

func TestShareSplitsOneRateFairlyBetweenStreams(t *testing.T) {
	// Streams take turns a chunk at a time, so the split is fair to within
	// a chunk or two; 5 KiB chunks are 1.7% of the 3 s window each (the
	// default, 100 ms of the rate, would be 3.3%).
	base := pacedProxy(t, "pace {\n rate 100KiB\n chunk 5KiB\n share {remote_host}\n}")
	// Counted from 1 s on, once both streams run: the one that starts
	// first has the rate to itself until the other comes.
	const from, window = time.Second, 3 * time.Second
	var got [2]int64
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			atFrom, atEnd := readFor(t, http.DefaultClient, base+"/bytes/"+strconv.Itoa(10<<20), from, from+window)
			got[i] = atEnd - atFrom
		})
	}
	wg.Wait()
	total := got[0] + got[1]
	share := float64(got[0]) / float64(total) * 100
	t.Logf("two streams on one 100 KiB/s share for %v: %d and %d bytes (%.1f%% / %.1f%%), together %.1f KiB/s",
		window, got[0], got[1], share, 100-share, float64(total)/window.Seconds()/1024)
	if share < 45 || share > 55 {
		t.Errorf("shares %.1f%% and %.1f%%, want 50/50 ± 5%%", share, 100-share)
	}
	if rate := float64(total) / window.Seconds(); rate > 1.1*100*1024 || rate < 0.8*100*1024 {
		t.Errorf("together %.0f B/s, want about 100 KiB/s", rate)
	}
}

// medianTTFB fetches url n times and returns the median time to first byte.
func medianTTFB(t *testing.T, url string, n int) time.Duration {
	var ttfbs []time.Duration
	for range n {
		ttfbs = append(ttfbs, get(t, url).ttfb)
	}
	slices.Sort(ttfbs)
	return ttfbs[n/2]
}

func TestLatencyAddsExactlyItselfToTimeToFirstByte(t *testing.T) {
	up := testUpstream(t)
	base := startCaddyfile(t, "ADDR {\n@slow query slow=1\npace @slow {\n latency 300ms\n}\nreverse_proxy "+up+"\n}")
	plain := medianTTFB(t, base+"/bytes/100", 5)
	slow := medianTTFB(t, base+"/bytes/100?slow=1", 5)
	t.Logf("median time to first byte: %v without pace, %v with latency 300ms: +%v", plain, slow, slow-plain)
	if added := slow - plain; !within(added, 300*time.Millisecond, 5*time.Millisecond, slack) {
		t.Errorf("latency 300ms added %v to the time to first byte", added)
	}
	r := get(t, base+"/bytes/100?slow=1")
	if r.Header.Get("X-Accel-Buffering") != "" || r.Header.Get("Content-Type") != "application/x-test" {
		t.Errorf("latency alone changed the response head: %v", r.Header)
	}
}
