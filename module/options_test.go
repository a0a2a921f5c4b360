package pace

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestOptionsPaceTheBodyAsTheySay(t *testing.T) {
	tests := []struct {
		name, pace, path string
		want             time.Duration // how long the body takes
		check            func(t *testing.T, r *timedResponse)
	}{
		{"rate alone", "pace {\n rate 10KiB\n}", "/bytes/20480", 2 * time.Second, nil},
		{"interval and rate: the interval is slower", "pace 1KiB 100ms {\n rate 100KiB\n}", "/bytes/10240", 900 * time.Millisecond, nil},
		{"interval and rate: the rate is slower", "pace 1KiB 100ms {\n rate 5KiB\n}", "/bytes/5120", time.Second, nil},
		{"after sends the first bytes at once", "pace {\n rate 10KiB\n after 8KiB\n}", "/bytes/18432", time.Second,
			func(t *testing.T, r *timedResponse) {
				if early := bytesBy(r, 100*time.Millisecond); early < 8192 {
					t.Errorf("%d bytes in the first 100 ms, want the 8 KiB of after", early)
				}
			}},
		{"max_duration sends the rest at full speed", "pace {\n rate 1KiB\n max_duration 1s\n}", "/bytes/1048576", time.Second, nil},
		{"jitter keeps the mean", "pace 1KiB 100ms {\n jitter 50%\n}", "/bytes/11264", time.Second,
			func(t *testing.T, r *timedResponse) {
				smallest, largest := gaps(r)
				t.Logf("jitter 50%% on 100 ms: gaps from %v to %v", smallest, largest)
				if largest-smallest < 10*time.Millisecond {
					t.Errorf("gaps from %v to %v: no jitter", smallest, largest)
				}
			}},
		{"lines", "pace 1line 100ms", "/text", 300 * time.Millisecond, wholeUnits("\n")},
		{"words", "pace 3words 100ms", "/text", 300 * time.Millisecond, wholeUnits(" ", "\n")},
		{"events keep text/event-stream", "pace 1event 100ms", "/sse", 300 * time.Millisecond,
			func(t *testing.T, r *timedResponse) {
				wholeUnits("\n\n")(t, r)
				if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("Content-Type %q", ct)
				}
			}},
		{"chars never split", "pace 7chars 100ms", "/text", 700 * time.Millisecond,
			func(t *testing.T, r *timedResponse) {
				for _, rd := range r.reads {
					if !utf8.Valid(rd.data) {
						t.Errorf("read %q splits a character", rd.data)
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := pacedProxy(t, tc.pace)
			r := get(t, base+tc.path)
			if r.err != nil || r.StatusCode != 200 {
				t.Fatalf("status %d (%v)", r.StatusCode, r.err)
			}
			want := expectedBody(tc.path)
			if !bytes.Equal(r.body, want) {
				t.Fatalf("body of %d bytes differs from the upstream's %d", len(r.body), len(want))
			}
			early := 5 * time.Millisecond
			if strings.Contains(tc.pace, "jitter 50%") {
				early += 25 * time.Millisecond // the last chunk may leave 25 ms before its slot
			}
			if !within(r.total, tc.want, early, slack) {
				t.Errorf("took %v, want %v", r.total, tc.want)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// expectedBody is what testUpstream sends for path.
func expectedBody(path string) []byte {
	switch {
	case path == "/text":
		return []byte(sampleText)
	case path == "/sse":
		return []byte(sseStream)
	case strings.HasPrefix(path, "/bytes/"):
		n := 0
		for _, c := range strings.TrimPrefix(path, "/bytes/") {
			n = n*10 + int(c-'0')
		}
		return bytes.Repeat([]byte("x"), n)
	}
	panic("no expected body for " + path)
}

// bytesBy counts the body bytes read within d of the request.
func bytesBy(r *timedResponse, d time.Duration) int {
	n := 0
	for _, rd := range r.reads {
		if rd.at <= d {
			n += len(rd.data)
		}
	}
	return n
}

// wholeUnits checks that every read but the last ends with one of ends: a
// chunk of lines, words or events is never cut inside one.
func wholeUnits(ends ...string) func(*testing.T, *timedResponse) {
	return func(t *testing.T, r *timedResponse) {
		for _, rd := range r.reads[:len(r.reads)-1] {
			ok := false
			for _, end := range ends {
				ok = ok || bytes.HasSuffix(rd.data, []byte(end))
			}
			if !ok {
				t.Errorf("read %q does not end a unit", rd.data)
			}
		}
		if len(r.reads) < 3 {
			t.Errorf("%d reads: the units did not arrive one chunk at a time", len(r.reads))
		}
	}
}

// isPaced tells a paced response from an untouched one by the head pace sets.
func isPaced(r *timedResponse) bool { return r.Header.Get("X-Accel-Buffering") == "no" }

func TestMatchPacesOnlyMatchingResponses(t *testing.T) {
	base := pacedProxy(t, "pace 1KiB 10ms {\n match {\n  status 2xx\n  header Content-Type application/x-*\n }\n}")
	for path, want := range map[string]bool{"/bytes/100": true, "/text": false, "/status/404": false, "/status/203": false} {
		if r := get(t, base+path); isPaced(r) != want {
			t.Errorf("%s: paced %v, want %v", path, isPaced(r), want)
		}
	}
}

func TestPercentSamplesRequests(t *testing.T) {
	for _, tc := range []struct {
		percent  string
		min, max int
	}{{"0", 0, 0}, {"100%", 400, 400}, {"50", 160, 240}} { // 50% of 400: 200 ± 4 standard deviations
		t.Run(tc.percent, func(t *testing.T) {
			base := pacedProxy(t, "pace 1KiB {\n percent "+tc.percent+"\n}")
			paced := 0
			for range 400 {
				if isPaced(get(t, base+"/bytes/10")) {
					paced++
				}
			}
			if paced < tc.min || paced > tc.max {
				t.Errorf("percent %s paced %d of 400, want %d–%d", tc.percent, paced, tc.min, tc.max)
			}
		})
	}
}

func TestUploadRatePacesTheRequestBody(t *testing.T) {
	base := pacedProxy(t, "pace {\n upload_rate 20KiB\n}")
	resp, err := http.Post(base+"/upload", "application/octet-stream", bytes.NewReader(make([]byte, 20480)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var n, readMs int64
	if _, err := fmt.Sscanf(string(body), "%d %d", &n, &readMs); err != nil || n != 20480 {
		t.Fatalf("upstream answered %q", body)
	}
	if read := time.Duration(readMs) * time.Millisecond; !within(read, time.Second, 10*time.Millisecond, slack) {
		t.Errorf("upstream read 20 KiB in %v, want 1 s at 20 KiB/s", read)
	}
	if resp.Header.Get("X-Accel-Buffering") != "" {
		t.Error("upload_rate alone paced the response")
	}
}

func TestLatencyHoldsHeadsWithoutBodies(t *testing.T) {
	base := startCaddyfile(t, "ADDR {\npace {\n latency 200ms\n}\nrespond /empty 204\nrespond \"hello\"\n}")
	for _, req := range []*http.Request{
		newRequest(t, http.MethodHead, base+"/"),
		newRequest(t, http.MethodGet, base+"/empty"),
	} {
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); !within(took, 200*time.Millisecond, 5*time.Millisecond, slack) {
			t.Errorf("%s %s: head after %v, want 200 ms", req.Method, req.URL.Path, took)
		}
	}
}

func TestPlaceholdersSetOptionsPerRequest(t *testing.T) {
	base := pacedProxy(t, "pace {\n rate {query.rate}\n chunk {http.request.header.X-Chunk}\n max_duration 2m\n}")
	// No value: those options are unset, and nothing is paced.
	if r := get(t, base+"/text"); isPaced(r) || string(r.body) != sampleText {
		t.Errorf("with no query: paced %v", isPaced(r))
	}
	// Values: paced as they say. 3 words at 20 B/s.
	r := get(t, base+"/text?rate=20", "X-Chunk", "3words")
	if !isPaced(r) || string(r.body) != sampleText || len(r.reads) < 3 {
		t.Errorf("paced %v, %d reads", isPaced(r), len(r.reads))
	}
	if want := time.Duration(float64(len(sampleText)) / 20 * float64(time.Second)); !within(r.total, want, 10*time.Millisecond, slack) {
		t.Errorf("%d bytes at 20 B/s took %v, want %v", len(sampleText), r.total, want)
	}
}

func TestABadPerRequestValueIsRefusedWith400BeforeTheNextHandler(t *testing.T) {
	before := sourceAccepted.Load()
	base := startCaddyfile(t, `ADDR {
		pace {
			rate {query.rate}
			chunk {query.chunk}
		}
		pace_test_source 1000 100
	}`)
	for query, mention := range map[string]string{
		"rate=abc":                   `pace: rate "abc": does not start with a number`,
		"rate=-5":                    `pace: rate "-5": does not start with a number`,
		"rate=0":                     `pace: rate "0": a rate must be above zero`,
		"chunk=99999999999999999999": `pace: chunk "99999999999999999999": at most 1.0 GiB a chunk`,
		"chunk=5%00chars":            `pace: chunk "5\x00chars": unknown unit`,
	} {
		r := get(t, base+"/?"+query)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), mention) {
			t.Errorf("?%s: %d %q, want 400 saying %q", query, r.StatusCode, r.body, mention)
		}
	}
	if sourceAccepted.Load() != before {
		t.Error("the next handler ran for a refused request")
	}
	// With handle_errors, the error is the site's to show.
	base = startCaddyfile(t, `ADDR {
		pace {
			rate {query.rate}
		}
		respond "hello"
		handle_errors {
			respond "custom: {err.status_code} {err.message}"
		}
	}`)
	if r := get(t, base+"/?rate=fast"); r.StatusCode != 400 || string(r.body) != `custom: 400 pace: rate "fast": does not start with a number (want e.g. 64KiB, 1MB, 500kbit)` {
		t.Errorf("with handle_errors: %d %q", r.StatusCode, r.body)
	}
}

func TestDebugLogLinePerPacedResponse(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "debug.log")
	base := startCaddyfile(t, `{
		log pacedebug {
			level DEBUG
			output file `+logFile+`
			include http.handlers.pace
		}
	}
	ADDR {
		pace 1KiB 10ms {
			max_duration 50ms
		}
		pace_test_source 20480 20480
	}`)
	get(t, base+"/")
	var line string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(logFile)
		if i := strings.Index(string(data), `"msg":"paced response"`); i >= 0 {
			line = string(data)
			break
		}
	}
	for _, field := range []string{`"bytes":20480`, `"chunks":`, `"elapsed":`, `"rate":"`, `"waited":`, `"late":`, `"late_waits":`, `"ended":"max_duration reached, rest sent unpaced"`} {
		if !strings.Contains(line, field) {
			t.Errorf("debug line %q lacks %s", line, field)
		}
	}
}

func TestMetricsAreServedAndSurviveAReload(t *testing.T) {
	config := `ADDR {
		metrics /metrics
		pace / 1KiB 10ms
		pace_test_source / 4096 4096
	}`
	for load := 1; load <= 2; load++ { // the second load is a reload, with a new registry
		base := startCaddyfile(t, config)
		get(t, base+"/")
		metrics := string(get(t, base+"/metrics").body)
		for _, name := range []string{"caddy_pace_responses_total", "caddy_pace_bytes_total", "caddy_pace_streams_in_flight", "caddy_pace_wait_seconds_total", "caddy_pace_late_seconds_total", "caddy_pace_late_waits_total"} {
			if !strings.Contains(metrics, "\n"+name+" ") {
				t.Errorf("load %d: /metrics has no %s", load, name)
			}
		}
		if !strings.Contains(metrics, "caddy_pace_streams_in_flight 0\n") {
			t.Errorf("load %d: streams in flight is not back to 0", load)
		}
	}
}

func TestShareBudgetsAreKeptAcrossAReload(t *testing.T) {
	budgets := func() (holder *budgetsHolder, refs int) {
		sharedBudgets.Range(func(_, v any) bool {
			b := v.(budgetsHolder)
			holder = &b
			return false
		})
		refs, _ = sharedBudgets.References(sharedBudgetsKey)
		return holder, refs
	}
	config := "ADDR {\npace {\n rate 10KiB\n share everyone\n}\npace_test_source 20480 20480\n}"
	base := startCaddyfile(t, config)
	get(t, base+"/") // leaves the budget owing: 20 KiB at 10 KiB/s
	first, _ := budgets()
	if first == nil || first.Len() != 1 {
		t.Fatal("no budget held after a shared response")
	}
	startCaddyfile(t, config) // reload
	second, refs := budgets()
	if second == nil || second.Budgets != first.Budgets || second.Len() != 1 || refs != 1 {
		t.Fatalf("after a reload the budgets are %p (was %p), %d references", second, first, refs)
	}
}

func TestAPresetFromAPlaceholderIsOverriddenByOptionsBesideIt(t *testing.T) {
	h := &Handler{Preset: "{query.net}", Latency: "10ms"}
	values := map[string]string{"{query.net}": "slow-4g"}
	o, err := h.parse(func(v string) string {
		if r, ok := values[v]; ok {
			return r
		}
		return v
	})
	c := conditions(o)
	if err != nil || c.Down != 200000 || c.Up != 93750 || c.RTT != 150*time.Millisecond || o.latency != 10*time.Millisecond {
		t.Fatalf("rate %v, upload %v, rtt %v, latency %v (%v); want slow-4g with latency 10ms", c.Down, c.Up, c.RTT, o.latency, err)
	}
}

func TestAbsurdPerRequestValuesAreBoundedByMaxDuration(t *testing.T) {
	base := pacedProxy(t, "pace {\n rate {query.rate}\n interval {query.interval}\n chunk {query.chunk}\n max_duration 1s\n}")
	for _, query := range []string{"rate=1", "interval=100h", "chunk=1&interval=1h", "rate=1bit&chunk=1"} {
		r := get(t, base+"/bytes/102400?"+query)
		if r.err != nil || len(r.body) != 102400 || !within(r.total, time.Second, 5*time.Millisecond, slack) {
			t.Errorf("?%s: %d bytes (%v) in %v, want all of 100 KiB in 1 s", query, len(r.body), r.err, r.total)
		}
	}
}
