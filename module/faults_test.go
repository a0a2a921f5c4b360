package pace

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// writeTrace writes a trace of rates (bytes per second), each for span, and
// returns its path.
func writeTrace(t *testing.T, span time.Duration, rates ...float64) string {
	var b strings.Builder
	owed, ms := 0.0, int64(0)
	for _, rate := range rates {
		for end := ms + span.Milliseconds(); ms < end; ms++ {
			for owed += rate / 1000 / pacing.PacketSize; owed >= 1; owed-- {
				fmt.Fprintln(&b, ms+1)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "down.trace")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestADownloadFollowsItsTraceThroughCaddy(t *testing.T) {
	// 2 Mbit/s for 2 s, then 20 Mbit/s, then 2 Mbit/s: a download follows
	// the trace's capacity. The exact target (±3% at every second) is the
	// realism benchmark's; on a loaded machine running -race, this allows
	// what a late timer costs.
	trace := writeTrace(t, 2*time.Second, 2e6/8, 20e6/8, 2e6/8, 20e6/8)
	base := pacedProxy(t, "pace {\n rtt 20ms\n trace "+trace+"\n}")
	const size = 2 << 20
	r := get(t, base+"/bytes/"+strconv.Itoa(size))
	if len(r.body) != size || r.err != nil {
		t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
	}
	// The trace carries 0.5 MB by 2 s, 5.5 MB by 4 s: 2 MiB arrives in the
	// second span, at 2 s + (2 MiB − 0.5 MB × 1448/1500) / (2.5 MB/s × 1448/1500).
	want := 2*time.Second + secondsOf((size-250_000*2*1448/1500.0)/(2.5e6*1448/1500))
	t.Logf("2 MiB over the trace: %v, want %v", r.total, want)
	if !within(r.total, want, 100*time.Millisecond, slack) {
		t.Errorf("2 MiB took %v, want %v", r.total, want)
	}
}

func TestAnOutageStallsAStreamAndLosesNothing(t *testing.T) {
	// 200 KB/s, out for 1 s of every 3 s (from 2 s to 3 s after the link
	// is made): a download of 600 KB stalls for the outage and resumes.
	base := pacedProxy(t, "pace {\n rtt 20ms\n rate 200KB\n outage 1s every 3s\n}")
	client := clientFrom("127.0.0.21")
	const size = 600_000
	r := fetch(t, client, newRequest(t, http.MethodGet, base+"/bytes/"+strconv.Itoa(size)))
	if len(r.body) != size || r.err != nil {
		t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
	}
	_, largest := gaps(r)
	t.Logf("600 KB with an outage of 1 s: %v in all, the longest gap between reads %v", r.total, largest)
	if !within(largest, time.Second, 20*time.Millisecond, 20*time.Millisecond+slack) {
		t.Errorf("the longest gap was %v, want the outage, 1 s (±1 RTT)", largest)
	}

	// A client that gives up during an outage sees its own timeout: an
	// abort, not a clean end.
	// A new client: a new link, up for 2 s and then out.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/bytes/"+strconv.Itoa(4*size), nil)
	resp, err := clientFrom("127.0.0.22").Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a client whose timeout ends in an outage got %v, want its own timeout", err)
	}
}

func TestLossSlowsAResponseAndLosesNoByte(t *testing.T) {
	base := pacedProxy(t, "pace {\n rtt 50ms\n rate 1MB\n loss 3%\n}")
	const size = 1 << 20
	r := fetch(t, clientFrom("127.0.0.23"), newRequest(t, http.MethodGet, base+"/bytes/"+strconv.Itoa(size)))
	if len(r.body) != size || r.err != nil || strings.Trim(string(r.body), "x") != "" {
		t.Fatalf("body %d bytes (%v), not the upstream's", len(r.body), r.err)
	}
	t.Logf("1 MiB at 3%% loss: %v (at the link's rate alone: %v)", r.total, secondsOf(linkCostOf(size, 1e6)/1e6))
	if r.total < 2*secondsOf(linkCostOf(size, 1e6)/1e6) {
		t.Errorf("1 MiB at 3%% loss took %v: loss did not slow it", r.total)
	}
}

func TestResetCutsItsShareOfResponsesAndNeverCleanly(t *testing.T) {
	defer func(f func() func() float64) { newRandom = f }(newRandom)
	newRandom = func() func() float64 {
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(10, 10))
		return func() float64 { // safe for the concurrent requests, as rand.Float64 is
			mu.Lock()
			defer mu.Unlock()
			return rng.Float64()
		}
	}
	// 2,000 requests at reset 10%: the share cut is 10% ± 2 points, and
	// every cut is an abort, over HTTP/1.1 (with a Content-Length and
	// chunked) and HTTP/2.
	base := startTLS(t, `pace {
		rtt 1ms
		reset 10%
	}
	reverse_proxy `+testUpstream(t)+` {
		flush_interval -1
	}`)
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableCompression: true}}
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, DisableCompression: true}}
	const size = 20000
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		n      int
	}{
		{"HTTP/1.1, Content-Length", h1, "/bytes/" + strconv.Itoa(size), 2000},
		{"HTTP/1.1, chunked", h1, "/stream/" + strconv.Itoa(size), 300},
		{"HTTP/2", h2, "/bytes/" + strconv.Itoa(size), 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cut, clean int
			var mu sync.Mutex
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for range tc.n {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					resp, err := tc.client.Get(base + tc.path)
					if err != nil {
						t.Error(err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						cut++
					case len(body) == size:
						clean++
					default:
						t.Errorf("a clean end after %d of %d bytes", len(body), size)
					}
				})
			}
			wg.Wait()
			share := float64(cut) / float64(tc.n) * 100
			t.Logf("%s: %d of %d cut (%.1f%%), every cut an abort", tc.name, cut, tc.n, share)
			if tc.n >= 2000 && (share < 8 || share > 12) || cut == 0 {
				t.Errorf("%.1f%% cut, want 10%% ± 2 points", share)
			}
		})
	}
}

func TestBadTracesAreRefusedWhenAdapted(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, mention string }{
		"backwards.trace": {"1\n5\n3\n", "line 3: 3 ms goes back from 5 ms"},
		"empty.trace":     {"", "no delivery opportunities"},
		"junk.trace":      {"1\n2\nthree\n", `line 3: "three" is not a time in whole milliseconds`},
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(tc.content), 0o644)
		for _, cf := range []string{"pace slow-4g {\n trace " + path + "\n}", "pace slow-4g {\n trace " + path + " " + path + "\n}"} {
			_, err := adaptPace(t, cf)
			if want := fmt.Sprintf("trace %q: %s", path, tc.mention); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one saying %s", cf, err, want)
			}
		}
	}
}
