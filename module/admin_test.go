package pace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A liveSite is a Caddy with its admin endpoint on, to change its named
// networks.
type liveSite struct {
	t          *testing.T
	site       string // http://host:port
	addr       string // the site's host:port
	admin      string // the admin endpoint's host:port
	adminCalls *http.Client
}

// startLive runs caddyfile as startCaddyfile does, with the admin endpoint
// on a free loopback address.
func startLive(t *testing.T, caddyfile string) *liveSite {
	t.Helper()
	// Every load replaces Caddy's admin server and shuts the old one down
	// in the background, so a kept-alive connection to it may be closed
	// under the next call: each call dials afresh.
	adminCalls := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	s := &liveSite{t: t, admin: freeAddr(t), adminCalls: adminCalls}
	t.Cleanup(func() { // after Caddy stops: close the admin endpoint too
		caddy.Load([]byte(`{"admin": {"disabled": true, "config": {"persist": false}}}`), true)
		caddy.Stop()
	})
	s.site = startOnFreePort(t, func(addr string) []byte {
		s.addr = addr
		return s.config(caddyfile)
	})
	return s
}

// config adapts caddyfile for the site's address, with the admin endpoint.
func (s *liveSite) config(caddyfile string) []byte {
	var c map[string]any
	if err := json.Unmarshal(adaptTestCaddyfile(s.t, caddyfile, s.addr), &c); err != nil {
		s.t.Fatal(err)
	}
	c["admin"] = map[string]any{"listen": s.admin, "config": map[string]any{"persist": false}}
	cfg, _ := json.Marshal(c)
	return cfg
}

// reload loads caddyfile in place of the running config, on the same
// addresses.
func (s *liveSite) reload(caddyfile string) {
	s.t.Helper()
	if err := caddy.Load(s.config(caddyfile), true); err != nil {
		s.t.Fatalf("reloading: %v", err)
	}
}

// call sends a request to the admin API and returns its status and body.
func (s *liveSite) call(method, path, body string) (int, string) {
	s.t.Helper()
	return callURL(s.t, s.adminCalls, method, "http://"+s.admin+path, body)
}

func callURL(t *testing.T, client *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = client.Do(req)
		// A load replaces the admin server, and the old one's listener,
		// which shares the port until it has shut down, may reset a
		// connection it accepted: a GET, which changes nothing, is sent
		// again.
		if err != nil && method == http.MethodGet && errors.Is(err, syscall.ECONNRESET) && attempt < 3 {
			t.Logf("%s %s: %v; again", method, url, err)
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		break
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// change PATCHes a network and returns when the change was answered.
func (s *liveSite) change(name, patch string) time.Time {
	s.t.Helper()
	if code, body := s.call(http.MethodPatch, "/pace/networks/"+name, patch); code != http.StatusOK {
		s.t.Fatalf("PATCH %s %s: %d %s", name, patch, code, body)
	}
	return time.Now()
}

// state GETs a network's state.
func (s *liveSite) state(name string) networkState {
	s.t.Helper()
	code, body := s.call(http.MethodGet, "/pace/networks/"+name, "")
	var st networkState
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		s.t.Fatalf("GET %s: %d %s (%v)", name, code, body, err)
	}
	return st
}

// A download is a response read in the background, every read timed.
type download struct {
	mu    sync.Mutex
	reads []timedRead
	body  bytes.Buffer
	err   error
	done  chan struct{}
	stop  context.CancelFunc
}

type timedRead struct {
	at time.Time
	n  int
}

// startDownload GETs url with client, and the header fields given as name,
// value pairs, reading in the background.
func startDownload(client *http.Client, url string, header ...string) *download {
	ctx, cancel := context.WithCancel(context.Background())
	d := &download{done: make(chan struct{}), stop: cancel}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	go func() {
		defer close(d.done)
		resp, err := client.Do(req)
		if err != nil {
			d.err = err
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			d.mu.Lock()
			if n > 0 {
				d.reads = append(d.reads, timedRead{time.Now(), n})
				d.body.Write(buf[:n])
			}
			d.mu.Unlock()
			if err != nil {
				if err != io.EOF {
					d.err = err
				}
				return
			}
		}
	}()
	return d
}

// between is how many bytes arrived in [from, to).
func (d *download) between(from, to time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.reads {
		if !r.at.Before(from) && r.at.Before(to) {
			n += r.n
		}
	}
	return n
}

// rate is the bytes per second that arrived in [from, to).
func (d *download) rate(from, to time.Time) float64 {
	return float64(d.between(from, to)) / to.Sub(from).Seconds()
}

// payloadRate is what a link of rate bytes per second carries of payload:
// 1448 bytes in every 1500-byte packet.
func payloadRate(rate float64) float64 { return rate * pacing.SegmentSize / pacing.PacketSize }

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// writeRandomFile writes n random bytes to name in a new directory, which
// it returns, with the bytes.
func writeRandomFile(t *testing.T, name string, n int) (dir string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	data = randomBytes(n, 1)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

const slow4G, fast4G = 1.6e6 / 8, 9e6 / 8 // the presets' rates down, in bytes per second

func TestANetworkChangesLiveForADownloadInFlight(t *testing.T) {
	// A 2 MB download under slow-4g; at 2 s the network goes offline, at
	// 3 s to fast-4g, at 4.3 s back to the config's slow-4g.
	dir, data := writeRandomFile(t, "big.bin", 2_000_000)
	lab := startLive(t, `ADDR {
		root * `+dir+`
		pace {
			preset slow-4g
			name lab
		}
		file_server
	}`)
	start := time.Now()
	d := startDownload(clientFrom("127.0.0.31"), lab.site+"/big.bin")
	defer d.stop()

	sleepUntil(start.Add(1500 * time.Millisecond))
	during := lab.state("lab")
	var list []networkState
	_, body := lab.call(http.MethodGet, "/pace/networks", "")
	json.Unmarshal([]byte(body), &list)
	t.Logf("GET while it runs: %+v", during)
	if during.Streams != 1 || during.Clients != 1 || during.BytesDown < 150_000 || during.Options["preset"] != "slow-4g" {
		t.Errorf("GET during the download: %+v, want 1 stream of 1 client, over 150 KB down, preset slow-4g", during)
	}
	if len(list) != 1 || list[0].Name != "lab" {
		t.Errorf("GET /pace/networks: %s, want the network lab", body)
	}

	sleepUntil(start.Add(2 * time.Second))
	offline := lab.change("lab", `{"preset": "offline"}`)
	sleepUntil(start.Add(3 * time.Second))
	fast := lab.change("lab", `{"preset": "fast-4g"}`)
	sleepUntil(start.Add(4300 * time.Millisecond))
	if code, body := lab.call(http.MethodDelete, "/pace/networks/lab", ""); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	restored := time.Now()
	if st := lab.state("lab"); st.Options["preset"] != "slow-4g" || st.Changed != nil {
		t.Errorf("after DELETE: %+v, want the config's slow-4g, unchanged", st)
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the download did not end")
	}
	if d.err != nil || !bytes.Equal(d.body.Bytes(), data) {
		t.Fatalf("the download got %d bytes of 2,000,000 (%v), intact: %v", d.body.Len(), d.err, bytes.Equal(d.body.Bytes(), data))
	}
	end := d.reads[len(d.reads)-1].at

	const rtt = 150 * time.Millisecond // slow-4g's
	lastOnline := offline
	for _, r := range d.reads {
		if r.at.Before(fast) {
			lastOnline = r.at
		}
	}
	slowRate := d.rate(start.Add(time.Second), start.Add(2*time.Second))
	fastRate := d.rate(fast.Add(200*time.Millisecond), fast.Add(1200*time.Millisecond))
	backRate := d.rate(restored.Add(200*time.Millisecond), end)
	t.Logf("slow-4g %.0f B/s; offline: last bytes %v after the PATCH; fast-4g %.0f B/s; back to slow-4g %.0f B/s (%v to the end); bytes intact",
		slowRate, lastOnline.Sub(offline), fastRate, backRate, end.Sub(restored))
	if stop := lastOnline.Sub(offline); stop > rtt {
		t.Errorf("bytes arrived %v after the network went offline, want none after one RTT, %v", stop, rtt)
	}
	if n := d.between(offline.Add(rtt), fast); n != 0 {
		t.Errorf("%d bytes arrived while offline", n)
	}
	for _, c := range []struct {
		name      string
		got, want float64
		tolerance float64
	}{
		{"slow-4g", slowRate, payloadRate(slow4G), 0.05},
		{"fast-4g after the PATCH", fastRate, payloadRate(fast4G), 0.05},
		{"slow-4g after the DELETE", backRate, payloadRate(slow4G), 0.10},
	} {
		if c.got < c.want*(1-c.tolerance) || c.got > c.want*(1+c.tolerance) {
			t.Errorf("%s: %.0f B/s, want %.0f (±%.0f%%)", c.name, c.got, c.want, c.tolerance*100)
		}
	}
	// The exchange ends when the handler returns, a moment after the
	// client has read the last byte.
	st := lab.state("lab")
	for end := time.Now().Add(2 * time.Second); st.Streams != 0 && time.Now().Before(end); st = lab.state("lab") {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Streams != 0 || st.BytesDown < 2_000_000 {
		t.Errorf("after the download: %+v, want no stream, 2 MB down", st)
	}
}

func TestAReloadKeepsANamedNetworksLinksUnderTheNewConditions(t *testing.T) {
	dir, _ := writeRandomFile(t, "big.bin", 2_000_000)
	site := func(preset string) string {
		return `ADDR {
			root * ` + dir + `
			pace {
				preset ` + preset + `
				name lab
			}
			file_server
		}`
	}
	lab := startLive(t, site("slow-4g"))
	client := clientFrom("127.0.0.32")
	start := time.Now()
	a := startDownload(client, lab.site+"/big.bin")
	defer a.stop()
	sleepUntil(start.Add(time.Second))
	lab.change("lab", `{"preset": "fast-4g"}`)

	// A reload with 3g in place of slow-4g: the live change goes, and the
	// download in flight (on the old config's handler) goes on at 3g.
	sleepUntil(start.Add(1500 * time.Millisecond))
	lab.reload(site("3g"))
	reloaded := time.Now()
	st := lab.state("lab")
	if st.Options["preset"] != "3g" || st.Changed != nil || st.Streams != 1 || st.Clients != 1 {
		t.Errorf("after the reload: %+v, want preset 3g, unchanged, the download's stream", st)
	}

	// A second download of the client after the reload shares its link:
	// together they carry the link's rate, with no fresh burst. (What the
	// queue held under fast-4g drains at 3g first: 0.4 s or so.)
	// The first download alone is measured over 1.8 s: 3g arrives in
	// pieces of three packets, 7% of a second of it each.
	sleepUntil(reloaded.Add(2600 * time.Millisecond))
	second := time.Now()
	b := startDownload(client, lab.site+"/big.bin")
	defer b.stop()
	sleepUntil(second.Add(2500 * time.Millisecond))
	const g3 = 500e3 / 8
	alone := a.rate(reloaded.Add(800*time.Millisecond), second)
	from, to := second.Add(500*time.Millisecond), second.Add(2500*time.Millisecond)
	together := a.rate(from, to) + b.rate(from, to)
	burst := b.rate(second, second.Add(time.Second))
	t.Logf("after the reload to 3g: the download in flight %.0f B/s alone; with a second one, together %.0f B/s (the second %.0f B/s in its first second); 3g carries %.0f B/s",
		alone, together, burst, payloadRate(g3))
	for _, c := range []struct {
		name string
		got  float64
	}{{"the download in flight", alone}, {"the two downloads together", together}} {
		if c.got < payloadRate(g3)*0.9 || c.got > payloadRate(g3)*1.1 {
			t.Errorf("%s: %.0f B/s after the reload, want 3g's %.0f (±10%%)", c.name, c.got, payloadRate(g3))
		}
	}
	if burst > payloadRate(g3)*1.1 {
		t.Errorf("the second download got %.0f B/s in its first second: a fresh link's burst, not the shared link", burst)
	}

	// A reload without the name forgets the network.
	lab.reload(`ADDR {
		respond "no network"
	}`)
	if code, body := lab.call(http.MethodGet, "/pace/networks/lab", ""); code != http.StatusNotFound {
		t.Errorf("GET lab after a reload without it: %d %s, want 404", code, body)
	}
}

func TestTheAdminAPIRefusesBadChangesAsALoadWould(t *testing.T) {
	lab := startLive(t, `ADDR {
		pace {
			preset slow-4g
			name lab
		}
		respond "hello"
	}`)
	loadError := func(h Handler) string {
		h.Name = "lab"
		_, err := h.parse(staticValue)
		if err == nil {
			err = h.check()
		}
		if err == nil {
			t.Fatalf("%+v loads", h)
		}
		return err.Error()
	}
	for _, c := range []struct {
		method, path, body string
		code               int
		mention            string
	}{
		{"PATCH", "/pace/networks/lab", `{"preset": "6g"}`, 400, loadError(Handler{Preset: "6g"})},
		{"PATCH", "/pace/networks/lab", `{"loss": "200%"}`, 400, loadError(Handler{Preset: "slow-4g", Loss: "200%"})},
		{"PATCH", "/pace/networks/lab", `{"rate": "fast"}`, 400, loadError(Handler{Preset: "slow-4g", Rate: "fast"})},
		{"PATCH", "/pace/networks/lab", `{"rtt": "{query.rtt}"}`, 400, `a named network's options are changed live`},
		{"PATCH", "/pace/networks/lab", `{"name": "other"}`, 400, `"name": not an option a live change can set`},
		{"PATCH", "/pace/networks/lab", `{"speed": "1MB"}`, 400, `"speed": not an option a live change can set`},
		{"PATCH", "/pace/networks/lab", `{"preset": 3}`, 400, `preset: 3: values are strings`},
		{"PATCH", "/pace/networks/lab", `preset=3g`, 400, `want a JSON object of option names and values`},
		{"PATCH", "/pace/networks/nope", `{"preset": "3g"}`, 404, `no network named "nope"`},
		{"GET", "/pace/networks/nope", ``, 404, `no network named "nope"`},
		{"PUT", "/pace/networks/lab", `{"preset": "3g"}`, 405, `method PUT not allowed`},
		{"POST", "/pace/networks", ``, 405, `method POST not allowed`},
	} {
		code, body := lab.call(c.method, c.path, c.body)
		var answer struct{ Error string }
		json.Unmarshal([]byte(body), &answer)
		if code != c.code || !strings.Contains(answer.Error, c.mention) {
			t.Errorf("%s %s %s: %d %s\nwant %d and an error saying %q", c.method, c.path, c.body, code, body, c.code, c.mention)
		}
	}
	if st := lab.state("lab"); st.Changed != nil || st.Options["preset"] != "slow-4g" {
		t.Errorf("after refused changes: %+v, want the config's", st)
	}

	// The routes are the admin endpoint's only: the site's own listener
	// answers as the site does, and changes nothing.
	for _, method := range []string{"GET", "PATCH", "DELETE"} {
		code, body := callURL(t, http.DefaultClient, method, lab.site+"/pace/networks/lab", `{"preset": "offline"}`)
		if code != http.StatusOK || body != "hello" {
			t.Errorf("%s /pace/networks/lab on the site: %d %q, want the site's own answer", method, code, body)
		}
	}
	if st := lab.state("lab"); st.Changed != nil {
		t.Errorf("a request to the site changed the network: %+v", st)
	}
	// A change that sets several options, and leaves a network.
	lab.change("lab", `{"rtt": "300ms", "rate": "1Mbit", "loss": "1%"}`)
	st := lab.state("lab")
	if st.Options["rtt"] != "300ms" || st.Options["preset"] != "slow-4g" || st.Options["loss"] != "1%" || len(st.Changed) != 3 {
		t.Errorf("after a change of three options: %+v", st)
	}
	lab.change("lab", `{"preset": "3g"}`) // a preset replaces what the last one set
	if st := lab.state("lab"); st.Options["rtt"] != "" || st.Options["preset"] != "3g" || st.Options["loss"] != "1%" {
		t.Errorf("after a change of preset: %+v, want 3g with loss 1%% and no rtt of its own", st)
	}
}

func TestAFailedLoadLeavesANamedNetworkAsItWas(t *testing.T) {
	// A config load provisions its handlers before the old config's are
	// cleaned up; one that fails cleans up its own. The network's
	// conditions are the last loaded handler's still in place.
	links := pacing.NewLinks(10)
	handler := func(preset string) *Handler {
		h := &Handler{Preset: preset, Name: "stack"}
		o, err := h.parse(staticValue)
		if err != nil {
			t.Fatal(err)
		}
		h.static, h.links = &o, links
		return h
	}
	now := time.Now()
	running := handler("slow-4g")
	n := registerNamed(running)
	client := httptest.NewRequest(http.MethodGet, "/", nil)
	client.RemoteAddr = "10.0.0.1:1234"
	held := n.acquire(client, now)
	defer links.Release(held, now)
	preset := func() string {
		for _, p := range []string{"slow-4g", "3g", "fast-4g"} {
			if held.Value.Network().RTT == presets[p].rtt {
				return p
			}
		}
		return "?"
	}
	if err := n.change(map[string]string{"preset": "fast-4g"}, now); err != nil || preset() != "fast-4g" {
		t.Fatalf("a live change: %v, the link is %s", err, preset())
	}
	failed := handler("3g")
	registerNamed(failed)
	if got := preset(); got != "3g" {
		t.Errorf("while a new config loads, the link is %s, want its 3g", got)
	}
	releaseNamed(n, failed)
	if got, _ := lookupNamed("stack"); got != n || preset() != "slow-4g" || n.state().Options["preset"] != "slow-4g" {
		t.Errorf("after the load failed, the link is %s, want the running config's slow-4g", preset())
	}
	releaseNamed(n, running)
	if _, ok := lookupNamed("stack"); ok {
		t.Error("the network is still known with no handler of its name")
	}
}
