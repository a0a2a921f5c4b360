package pace

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// This file runs a real Caddy inside the test process and reads from it with
// a real HTTP client. Caddy holds one running config per process, so tests
// that start it do not run in parallel.

// freeAddr returns a loopback address with a port that was free a moment
// ago on every address: Caddy listens on all of them (":port"), which a
// socket of another loopback address (a test's client, 127.0.0.44:port)
// would block.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

// testGlobals keeps a test's Caddy quiet and to itself: no admin endpoint,
// nothing written to the user's config, errors only in the log.
const testGlobals = "\n\tadmin off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n"

// startCaddyfile runs a Caddyfile in which `HOSTPORT` stands for a free
// loopback address and `ADDR` for http://HOSTPORT, and returns
// http://HOSTPORT. The test globals join the Caddyfile's own global options
// block, if it has one.
func startCaddyfile(t testing.TB, caddyfile string) string {
	t.Helper()
	return startOnFreePort(t, func(addr string) []byte { return adaptTestCaddyfile(t, caddyfile, addr) })
}

// adaptTestCaddyfile adapts a test's Caddyfile, HOSTPORT being addr, with
// the test globals.
func adaptTestCaddyfile(t testing.TB, caddyfile, addr string) []byte {
	t.Helper()
	cf := strings.ReplaceAll(caddyfile, "ADDR", "http://HOSTPORT")
	cf = strings.ReplaceAll(cf, "HOSTPORT", addr)
	if rest, ok := strings.CutPrefix(strings.TrimSpace(cf), "{"); ok {
		cf = "{" + testGlobals + rest
	} else {
		cf = "{" + testGlobals + "}\n" + cf
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, cf)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "not formatted") {
			t.Logf("adapt warning: %s", w)
		}
	}
	return cfg
}

// startJSON runs a JSON config with one server listening on a free address,
// whose routes are given, and returns the base URL.
func startJSON(t testing.TB, routes string) string {
	t.Helper()
	return startOnFreePort(t, func(addr string) []byte {
		cfg := `{
			"admin": {"disabled": true, "config": {"persist": false}},
			"logging": {"logs": {"default": {"level": "ERROR"}}},
			"apps": {"http": {"servers": {"test": {
				"listen": [` + strconv.Quote(addr) + `],
				"automatic_https": {"disable": true},
				"routes": ` + routes + `
			}}}}
		}`
		if !json.Valid([]byte(cfg)) {
			t.Fatalf("invalid JSON config:\n%s", cfg)
		}
		return []byte(cfg)
	})
}

// startOnFreePort runs the config that makeConfig makes for a free loopback
// address until the test ends, and returns http:// and that address. A port
// that was free when picked can be taken before Caddy binds it (on TCP, or
// on UDP for HTTP/3); then it tries another.
func startOnFreePort(t testing.TB, makeConfig func(addr string) []byte) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addr := freeAddr(t)
		cfg := makeConfig(addr)
		err := caddy.Load(cfg, true)
		if err != nil && attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			t.Logf("port taken before Caddy bound it, trying another: %v", err)
			continue
		}
		if err != nil {
			t.Fatalf("loading config: %v\n%s", err, cfg)
		}
		stopAtCleanup(t)
		return "http://" + addr
	}
}

// loadConfig runs a JSON config until the test ends.
func loadConfig(t testing.TB, cfg []byte) {
	t.Helper()
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v\n%s", err, cfg)
	}
	stopAtCleanup(t)
}

func stopAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
}

// proxyPaced starts an upstream serving h, and a Caddy that proxies to it
// with `pace <paceArgs>` in front; it returns Caddy's base URL.
func proxyPaced(t testing.TB, paceArgs string, h http.Handler) string {
	t.Helper()
	upstream := httptest.NewServer(h)
	t.Cleanup(upstream.Close) // after Caddy stops: cleanups run last-in first-out
	return startCaddyfile(t, "ADDR {\n\tpace "+paceArgs+"\n\treverse_proxy "+upstream.Listener.Addr().String()+"\n}")
}

// read is one Read of a response body, with when it returned.
type read struct {
	at   time.Duration // since the request was sent
	data []byte
}

// timedResponse is a response read to the end, each Read timed.
type timedResponse struct {
	*http.Response
	reads []read
	body  []byte
	ttfb  time.Duration // request sent to first body byte
	total time.Duration // request sent to end of body
	err   error         // from reading the body
}

// fetch sends req and reads the whole body, timing every Read. The client
// does not ask for compression unless req does.
func fetch(t testing.TB, client *http.Client, req *http.Request) *timedResponse {
	t.Helper()
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	tr := &timedResponse{Response: resp}
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			at := time.Since(start)
			if len(tr.reads) == 0 {
				tr.ttfb = at
			}
			tr.reads = append(tr.reads, read{at: at, data: bytes.Clone(buf[:n])})
			tr.body = append(tr.body, buf[:n]...)
		}
		if err != nil {
			if err != io.EOF {
				tr.err = err
			}
			break
		}
	}
	tr.total = time.Since(start)
	return tr
}

// newRequest makes a request with the given header fields, as name, value pairs.
func newRequest(t testing.TB, method, url string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func get(t testing.TB, url string, header ...string) *timedResponse {
	t.Helper()
	return fetch(t, nil, newRequest(t, http.MethodGet, url, header...))
}

// checkTiming checks that a body paced in chunks spaced by interval took as
// long as its schedule: never less, and at most slack more.
func checkTiming(t testing.TB, r *timedResponse, chunks int, interval time.Duration) {
	t.Helper()
	want := time.Duration(chunks-1) * interval
	if !within(r.total, want, 5*time.Millisecond, slack) {
		t.Errorf("%d chunks took %v, want %v", chunks, r.total, want)
	}
}

// within reports whether got is in [want-below, want+above].
func within(got, want, below, above time.Duration) bool {
	return got >= want-below && got <= want+above
}

// slack is how late a loaded 2-core CI machine, running with -race, may be
// to deliver a paced body; pacing is never early, so lower bounds are tight.
const slack = 700 * time.Millisecond
