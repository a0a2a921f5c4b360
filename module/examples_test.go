package pace

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// exampleChecks says, for every file in caddyfile-examples/, what running it
// must show. A new example without an entry here fails the test.
var exampleChecks = map[string]func(t *testing.T, base string){
	"demo/Caddyfile": func(t *testing.T, base string) {
		page := getHost(t, base+"/")
		if !bytes.Contains(page.body, []byte("caddy-pace")) || page.Header.Get("X-Accel-Buffering") != "" {
			t.Errorf("the page itself should arrive unpaced: %d bytes, headers %v", len(page.body), page.Header)
		}
		req := newRequest(t, http.MethodGet, base+"/")
		req.Host = "127.0.0.1" // the demo serves http://127.0.0.1:8080 too
		if page := fetch(t, nil, req); !bytes.Equal(page.body, getHost(t, base+"/").body) {
			t.Errorf("the demo at 127.0.0.1 answers %d %q, not the page", page.StatusCode, page.body[:min(len(page.body), 80)])
		}
		checkPacedText(t, base+"/story.txt", 5, 100*time.Millisecond)
		checkPacedImage(t, base+"/img/rings.png", 1024, 400*time.Millisecond)
		events := getHost(t, base+"/events.sse")
		if events.Header.Get("Content-Type") != "text/event-stream" || len(events.reads) < 4 {
			t.Errorf("events: Content-Type %q, %d reads", events.Header.Get("Content-Type"), len(events.reads))
		}
		story, _ := os.ReadFile("caddyfile-examples/demo/site/story.txt")
		tried := getHost(t, base+"/try/story.txt?chunk=3+words&interval=50ms")
		if !bytes.Equal(tried.body, story) || !isPaced(tried) || len(tried.reads) < 5 {
			t.Errorf("/try with a chunk and an interval: %d reads, paced %v", len(tried.reads), isPaced(tried))
		}
		if r := getHost(t, base+"/try/story.txt"); isPaced(r) || !bytes.Equal(r.body, story) {
			t.Errorf("/try with nothing picked was paced")
		}
		if r := getHost(t, base+"/try/story.txt?preset=5g"); r.StatusCode != 400 || !strings.Contains(string(r.body), `preset "5g"`) {
			t.Errorf("/try?preset=5g: %d %q", r.StatusCode, r.body)
		}
	},
	"story.Caddyfile": func(t *testing.T, base string) {
		checkPacedText(t, base+"/story.txt", 5, 100*time.Millisecond)
	},
	"image.Caddyfile": func(t *testing.T, base string) {
		checkPacedImage(t, base+"/img/rings.png", 1024, 100*time.Millisecond)
	},
	"proxy.Caddyfile": func(t *testing.T, base string) {
		r := getHost(t, base+"/")
		if !bytes.Equal(r.body, proxyBody) {
			t.Fatalf("proxied body differs: %d bytes, want %d", len(r.body), len(proxyBody))
		}
		checkTiming(t, r, len(proxyBody)/2048, 50*time.Millisecond)
	},
	"gzip.Caddyfile": func(t *testing.T, base string) {
		checkPacedText(t, base+"/index.html", 200, 50*time.Millisecond, "Accept-Encoding", "gzip")
		r := getHost(t, base+"/index.html", "Accept-Encoding", "gzip", "Sec-Fetch-Dest", "document")
		if r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("a navigation should be compressed: Content-Encoding %q", r.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		chunks := (utf8.RuneCount(plain) + 199) / 200
		if len(r.reads) < chunks/2 {
			t.Errorf("%d reads of the compressed stream for %d chunks", len(r.reads), chunks)
		}
		checkTiming(t, r, chunks, 50*time.Millisecond)
	},
	"pace.json": func(t *testing.T, base string) {
		checkPacedText(t, base+"/story.txt", 5, 100*time.Millisecond)
	},
	"slow-network.Caddyfile": func(t *testing.T, base string) {
		r := getHost(t, base+"/")
		// A new connection's handshake and the request's round trip,
		// 300 ms, then 20 KiB at 1.6 Mbit/s of link, with a round trip of
		// slow start.
		want := 300*time.Millisecond + secondsOf(linkCostOf(len(proxyBody), 200000)/200000)
		if !bytes.Equal(r.body, proxyBody) || r.ttfb < 300*time.Millisecond || !within(r.total, want, 5*time.Millisecond, 150*time.Millisecond+slack) {
			t.Errorf("%d bytes, first after %v, all after %v; want the body after %v and a round trip of slow start", len(r.body), r.ttfb, r.total, want)
		}
	},
	"per-client.Caddyfile": func(t *testing.T, base string) {
		// Two downloads at once from one client share its 64 KiB/s: 40 KiB
		// less the budget's 100 ms of credit take 0.525 s, where each alone
		// on its own budget would take half that.
		var wg sync.WaitGroup
		var totals [2]time.Duration
		for i := range totals {
			wg.Go(func() {
				r := getHost(t, base+"/")
				if !bytes.Equal(r.body, proxyBody) {
					t.Errorf("body of %d bytes differs", len(r.body))
				}
				totals[i] = r.total
			})
		}
		wg.Wait()
		want := time.Duration((2*float64(len(proxyBody)) - 65536*0.1) / 65536 * float64(time.Second))
		if last := max(totals[0], totals[1]); !within(last, want, 10*time.Millisecond, slack) {
			t.Errorf("two downloads took %v and %v, want the later at %v", totals[0], totals[1], want)
		}
	},
	"per-request.Caddyfile": func(t *testing.T, base string) {
		r := getHost(t, base+"/api/x?rate=40KiB&chunk=1KiB")
		if !bytes.Equal(r.body, proxyBody) || !within(r.total, 500*time.Millisecond, 5*time.Millisecond, slack) {
			t.Errorf("?rate=40KiB: %d bytes in %v, want 20 KiB in 500ms", len(r.body), r.total)
		}
		if r := getHost(t, base+"/api/x", "X-Pace-Latency", "300ms"); r.ttfb < 300*time.Millisecond || isPaced(r) {
			t.Errorf("X-Pace-Latency: 300ms: first byte after %v, body paced %v", r.ttfb, isPaced(r))
		}
		if r := getHost(t, base+"/api/x?rate=lots"); r.StatusCode != 400 || !strings.Contains(string(r.body), `rate "lots"`) {
			t.Errorf("?rate=lots: %d %q, want 400 naming the value", r.StatusCode, r.body)
		}
		if r := getHost(t, base+"/x?rate=1"); isPaced(r) || !bytes.Equal(r.body, proxyBody) {
			t.Error("a path outside /api/ was paced")
		}
	},
	"sse.Caddyfile": func(t *testing.T, base string) {
		r := getHost(t, base+"/events.sse")
		want, _ := os.ReadFile("caddyfile-examples/demo/site/events.sse")
		if r.Header.Get("Content-Type") != "text/event-stream" || !bytes.Equal(r.body, want) {
			t.Fatalf("Content-Type %q, body %q", r.Header.Get("Content-Type"), r.body)
		}
		events := bytes.Count(want, []byte("\n\n"))
		for i, rd := range r.reads {
			if n := bytes.Count(rd.data, []byte("\n\n")); n != 1 || !bytes.HasSuffix(rd.data, []byte("\n\n")) {
				t.Errorf("read %d holds %d events: %q", i, n, rd.data)
			}
		}
		checkTiming(t, r, events, 300*time.Millisecond)
	},
}

// proxyBody is what the upstream of proxy.Caddyfile serves in the test.
var proxyBody = randomBytes(20<<10, 9)

func TestExamples(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(proxyBody)
	}))
	defer upstream.Close()
	t.Setenv("UPSTREAM", upstream.Listener.Addr().String())
	t.Chdir("..") // examples name their files from the repository root

	var names []string
	filepath.WalkDir("caddyfile-examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if name := filepath.Base(path); name == "Caddyfile" || strings.HasSuffix(name, ".Caddyfile") || strings.HasSuffix(name, ".json") {
			names = append(names, strings.TrimPrefix(filepath.ToSlash(path), "caddyfile-examples/"))
		}
		return nil
	})
	if len(names) < len(exampleChecks) {
		t.Errorf("found %d examples, but checks for %d", len(names), len(exampleChecks))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			check, ok := exampleChecks[name]
			if !ok {
				t.Fatalf("example %s has no check in exampleChecks", name)
			}
			src, err := os.ReadFile(filepath.Join("caddyfile-examples", name))
			if err != nil {
				t.Fatal(err)
			}
			cfg := src
			if !strings.HasSuffix(name, ".json") {
				var warnings []caddyconfig.Warning
				cfg, warnings, err = caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": name})
				if err != nil {
					t.Fatalf("adapting: %v", err)
				}
				for _, w := range warnings {
					t.Errorf("adapt warning: %s", w) // examples are formatted and clean
				}
			}
			base := runExample(t, cfg)
			check(t, base)
		})
	}
}

// runExample runs an example's JSON config with its listeners moved to a
// free loopback port, the admin endpoint off and the log quiet.
func runExample(t *testing.T, cfg []byte) string {
	return runExampleWithAdmin(t, cfg, "")
}

// runExampleWithAdmin is runExample with the admin endpoint at admin (off
// if empty).
func runExampleWithAdmin(t *testing.T, cfg []byte, admin string) string {
	var c map[string]any
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	c["admin"] = map[string]any{"disabled": true, "config": map[string]any{"persist": false}}
	if admin != "" {
		c["admin"] = map[string]any{"listen": admin, "config": map[string]any{"persist": false}}
		t.Cleanup(func() { // after Caddy stops: close the admin endpoint too
			caddy.Load([]byte(`{"admin": {"disabled": true, "config": {"persist": false}}}`), true)
			caddy.Stop()
		})
	}
	c["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}}
	servers := c["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	for _, s := range servers {
		srv := s.(map[string]any)
		srv["listen"] = []string{addr}
		srv["automatic_https"] = map[string]any{"disable": true}
	}
	out, _ := json.Marshal(c)
	loadConfig(t, out)
	return "http://" + addr
}

// getHost is get with the Host the examples serve: localhost.
func getHost(t *testing.T, url string, header ...string) *timedResponse {
	t.Helper()
	req := newRequest(t, http.MethodGet, url, header...)
	req.Host = "localhost"
	return fetch(t, nil, req)
}

// checkPacedText fetches a UTF-8 text paced at n chars per chunk and checks
// that it arrives whole, in whole chunks, on schedule.
func checkPacedText(t *testing.T, url string, n int, interval time.Duration, header ...string) {
	t.Helper()
	r := getHost(t, url, header...)
	if r.StatusCode != 200 || !utf8.Valid(r.body) || len(r.body) == 0 {
		t.Fatalf("status %d, %d bytes, valid UTF-8: %v", r.StatusCode, len(r.body), utf8.Valid(r.body))
	}
	for i, rd := range r.reads {
		if c := utf8.RuneCount(rd.data); !utf8.Valid(rd.data) || (c%n != 0 && i != len(r.reads)-1) {
			t.Fatalf("read %d is not whole chunks of %d characters: %q", i, n, rd.data)
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q, want application/octet-stream", ct)
	}
	chunks := (utf8.RuneCount(r.body) + n - 1) / n
	if len(r.reads) < chunks/2 {
		t.Errorf("%d reads for %d chunks", len(r.reads), chunks)
	}
	checkTiming(t, r, chunks, interval)
}

func checkPacedImage(t *testing.T, url string, chunk int, interval time.Duration) {
	t.Helper()
	r := getHost(t, url)
	if ct := r.Header.Get("Content-Type"); ct != "image/png" || !bytes.HasPrefix(r.body, []byte("\x89PNG")) {
		t.Fatalf("Content-Type %q, %d bytes", ct, len(r.body))
	}
	checkTiming(t, r, (len(r.body)+chunk-1)/chunk, interval)
}

// TestTheExamplesListenOnLoopbackOnly checks that every example, whose
// sites are localhost's, cannot be reached from the network: its servers
// listen on the loopback address only, not on every interface.
func TestTheExamplesListenOnLoopbackOnly(t *testing.T) {
	names, _ := filepath.Glob("../caddyfile-examples/*.Caddyfile")
	names = append(names, "../caddyfile-examples/demo/Caddyfile")
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var c struct {
			Apps struct {
				HTTP struct {
					Servers map[string]struct{ Listen []string }
				}
			}
		}
		json.Unmarshal(cfg, &c)
		for _, srv := range c.Apps.HTTP.Servers {
			for _, addr := range srv.Listen {
				if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
					t.Errorf("%s listens on %q, want the loopback address only", filepath.Base(name), addr)
				}
			}
		}
	}
}
