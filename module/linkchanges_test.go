package pace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// These tests give each key of a named network (each test of a suite) its
// own link, and change one link at a time through the admin API.

// linkSite is a named network lab of slow-4g, its links keyed by share,
// serving dir's files.
func linkSite(t *testing.T, dir, share string) *liveSite {
	return startLive(t, `ADDR {
		root * `+dir+`
		pace {
			preset slow-4g
			name lab
			share `+share+`
		}
		file_server
	}`)
}

// linkState GETs the state of one link of lab.
func (s *liveSite) linkState(key string) linkState {
	s.t.Helper()
	code, body := s.call(http.MethodGet, "/pace/networks/lab/links/"+url.PathEscape(key), "")
	var st linkState
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		s.t.Fatalf("GET link %q: %d %s (%v)", key, code, body, err)
	}
	return st
}

// changeLink PATCHes one link of lab, or DELETEs its change if patch is
// empty.
func (s *liveSite) changeLink(key, patch string) {
	s.t.Helper()
	method := http.MethodPatch
	if patch == "" {
		method = http.MethodDelete
	}
	if code, body := s.call(method, "/pace/networks/lab/links/"+url.PathEscape(key), patch); code != http.StatusOK {
		s.t.Fatalf("%s link %q %s: %d %s", method, key, patch, code, body)
	}
}

// checkRate checks a rate against want, within tolerance (0.1 for 10%).
func checkRate(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if got < want*(1-tolerance) || got > want*(1+tolerance) {
		t.Errorf("%s: %.0f B/s, want %.0f (±%.0f%%)", what, got, want, tolerance*100)
	}
}

func TestEachKeyOfANamedNetworkHasALinkOfItsOwn(t *testing.T) {
	// Two downloads at once from one client address, as two tests of a
	// suite on one machine, each with its own cookie.
	dir, data := writeRandomFile(t, "big.bin", 2_000_000)
	lab := linkSite(t, dir, "{cookie.pace_link}")
	client := clientFrom("127.0.0.41")
	start := time.Now()
	a := startDownload(client, lab.site+"/big.bin", "Cookie", "pace_link=test-a")
	b := startDownload(client, lab.site+"/big.bin", "Cookie", "pace_link=test-b")
	defer a.stop()
	defer b.stop()
	sleepUntil(start.Add(1500 * time.Millisecond))
	st := lab.state("lab")
	keys := map[string]int{}
	for _, l := range st.Links {
		keys[l.Key] = l.Streams
	}
	t.Logf("GET lab while both run: %d clients, %d streams, links %v", st.Clients, st.Streams, keys)
	if keys["test-a"] != 1 || keys["test-b"] != 1 || len(keys) != 2 {
		t.Errorf("links %v, want test-a and test-b with a stream each", keys)
	}
	sleepUntil(start.Add(3 * time.Second))
	rateA, rateB := a.rate(start.Add(time.Second), start.Add(3*time.Second)), b.rate(start.Add(time.Second), start.Add(3*time.Second))
	t.Logf("from 1 s to 3 s: %.0f and %.0f B/s; slow-4g carries %.0f", rateA, rateB, payloadRate(slow4G))
	checkRate(t, "test-a's download", rateA, payloadRate(slow4G), 0.05)
	checkRate(t, "test-b's download", rateB, payloadRate(slow4G), 0.05)
	for _, d := range []*download{a, b} {
		<-d.done
		if d.err != nil || !bytes.Equal(d.body.Bytes(), data) {
			t.Errorf("a download got %d bytes (%v)", d.body.Len(), d.err)
		}
	}
}

func TestALinkChangesOnItsOwn(t *testing.T) {
	// Two downloads of one client, on links test-a and test-b. test-a's
	// link goes to 3g; then the whole network to fast-4g, which reaches
	// test-b's link but not test-a's; then test-a's change is deleted, and
	// its link takes the network's fast-4g.
	dir, data := writeRandomFile(t, "big.bin", 3_000_000)
	lab := linkSite(t, dir, "{header.X-Pace-Link}")
	client := clientFrom("127.0.0.42")
	start := time.Now()
	a := startDownload(client, lab.site+"/big.bin", "X-Pace-Link", "test-a")
	b := startDownload(client, lab.site+"/big.bin", "X-Pace-Link", "test-b")
	defer a.stop()
	defer b.stop()
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }

	sleepUntil(at(1500))
	lab.changeLink("test-a", `{"preset": "3g"}`)
	if st := lab.linkState("test-a"); st.Options["preset"] != "3g" || st.Changed["preset"] != "3g" || st.Streams != 1 {
		t.Errorf("GET test-a after its PATCH: %+v, want 3g of its own, one stream", st)
	}
	if st := lab.linkState("test-b"); st.Options["preset"] != "slow-4g" || st.Changed != nil || st.Streams != 1 {
		t.Errorf("GET test-b: %+v, want the network's slow-4g, one stream", st)
	}
	sleepUntil(at(3500))
	lab.change("lab", `{"preset": "fast-4g"}`)
	sleepUntil(at(5300))
	lab.changeLink("test-a", "")
	if st := lab.linkState("test-a"); st.Options["preset"] != "fast-4g" || st.Changed != nil {
		t.Errorf("GET test-a after its DELETE: %+v, want the network's fast-4g", st)
	}
	sleepUntil(at(6300))

	// Each window holds 1.4 s of 3g or more: 3g arrives in pieces of
	// three packets (4,344 bytes, 7% of a second of it), so a window of
	// 0.7 s counted 9 or 10 of them by where its edges fell, −7.4% or
	// +2.9%, and one piece more or less would have been out of bounds.
	rates := []struct {
		what      string
		got, want float64
	}{
		{"test-a, its own 3g", a.rate(at(2100), at(3500)), payloadRate(62_500)},
		{"test-b beside it, the network's slow-4g", b.rate(at(2100), at(3500)), payloadRate(slow4G)},
		{"test-a, its own 3g, after the network went fast-4g", a.rate(at(3800), at(5300)), payloadRate(62_500)},
		{"test-b, the network's fast-4g", b.rate(at(3800), at(5000)), payloadRate(fast4G)},
		{"test-a after its DELETE, the network's fast-4g", a.rate(at(5700), at(6300)), payloadRate(fast4G)},
	}
	for _, r := range rates {
		t.Logf("%s: %.0f B/s (%.0f)", r.what, r.got, r.want)
		checkRate(t, r.what, r.got, r.want, 0.10)
	}
	for _, d := range []*download{a, b} {
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			t.Fatal("a download did not end")
		}
		if d.err != nil || !bytes.Equal(d.body.Bytes(), data) {
			t.Errorf("a download got %d bytes (%v), intact %v", d.body.Len(), d.err, bytes.Equal(d.body.Bytes(), data))
		}
	}
}

func TestALinkIsSetBeforeItsFirstRequestAndItsKeyRoundTrips(t *testing.T) {
	// A key with a slash, a percent sign and 300 bytes, as a header holds
	// it, set offline before its first request.
	lab := startLive(t, `ADDR {
		pace {
			rtt 20ms
			name lab
			share {header.X-Pace-Link}
		}
		respond "hello"
	}`)
	key := "worker/1%20" + strings.Repeat("x", 289)
	lab.changeLink(key, `{"preset": "offline"}`)
	st := lab.linkState(key)
	if st.Key != pacing.HeldKey(key) || st.Changed["preset"] != "offline" || st.Streams != 0 {
		t.Errorf("GET the link before its first request: %+v, want its key held as %s, offline", st, pacing.HeldKey(key))
	}
	get := func(key string, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lab.site, nil)
		req.Header.Set("X-Pace-Link", key)
		resp, err := clientFrom("127.0.0.43").Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		return b.String(), err
	}
	if body, err := get(key, 500*time.Millisecond); err == nil {
		t.Errorf("the offline link answered %q", body)
	}
	if body, err := get("another", 2*time.Second); body != "hello" || err != nil {
		t.Errorf("another key's link: %q, %v; want hello", body, err)
	}
	lab.changeLink(key, "")
	if body, err := get(key, 2*time.Second); body != "hello" || err != nil {
		t.Errorf("after DELETE of its change: %q, %v; want hello", body, err)
	}
	if st := lab.linkState(key); st.Changed != nil || st.Key != pacing.HeldKey(key) {
		t.Errorf("GET the link after its request: %+v, want no change of its own", st)
	}
}

func TestTenThousandKeysStayBounded(t *testing.T) {
	// 10,000 keys, each PATCHed and each with a request, against a bound of
	// 1,000 links: the links held and the links changed stay within it.
	defer func(max int) { maxIdleLinks = max }(maxIdleLinks)
	maxIdleLinks = 1000
	lab := startLive(t, `ADDR {
		pace {
			rtt 1ms
			name lab
			share {header.X-Pace-Link}
		}
		respond "hello"
	}`)
	const keys = 10_000
	client := clientFrom("127.0.0.44")
	// Kept alive, so that 10,000 calls leave no 10,000 closed connections
	// behind, whose ports the next tests' servers could not take.
	lab.adminCalls = &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				key := fmt.Sprintf("test-%05d", i)
				lab.changeLink(key, `{"loss": "1%"}`)
				req, _ := http.NewRequest(http.MethodGet, lab.site, nil)
				req.Header.Set("X-Pace-Link", key)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				resp.Body.Close()
			}
		})
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
	st := lab.state("lab")
	changed := 0
	for _, l := range st.Links {
		if l.Changed != nil {
			changed++
		}
	}
	t.Logf("after %d keys: %d links listed, %d with changes of their own", keys, len(st.Links), changed)
	if changed > maxIdleLinks || len(st.Links) > 2*maxIdleLinks {
		t.Errorf("%d links listed, %d changed, want at most %d changed", len(st.Links), changed, maxIdleLinks)
	}
	if st := lab.linkState(fmt.Sprintf("test-%05d", keys-1)); st.Changed["loss"] != "1%" {
		t.Errorf("the last key's link: %+v, want its change kept", st)
	}
	if st := lab.linkState("test-00000"); st.Changed != nil {
		t.Errorf("the first key's link: %+v, want its change dropped past the bound", st)
	}
}

func TestTheAdminAPIRefusesBadLinks(t *testing.T) {
	lab := startLive(t, `ADDR {
		pace {
			preset slow-4g
			name lab
			share {cookie.pace_link}
		}
		respond "hello"
	}`)
	for _, c := range []struct {
		method, path, body string
		code               int
		mention            string
	}{
		{"PATCH", "/pace/networks/nope/links/a", `{"preset": "3g"}`, 404, `no network named "nope"`},
		{"PATCH", "/pace/networks/lab/links/", `{"preset": "3g"}`, 400, `link key "": empty`},
		{"PATCH", "/pace/networks/lab/links/a%00b", `{"preset": "3g"}`, 400, `link key "a%00b": has a control character`},
		{"PATCH", "/pace/networks/lab/links/a%ffb", `{"preset": "3g"}`, 400, `link key "a%ffb": not UTF-8`},
		{"PATCH", "/pace/networks/lab/links/" + strings.Repeat("k", 9000), `{"preset": "3g"}`, 400, `link key of 9000 bytes: at most 8192`},
		{"PATCH", "/pace/networks/lab/links/a", `preset=3g`, 400, `want a JSON object of option names and values`},
		{"PATCH", "/pace/networks/lab/links/a", `["preset"]`, 400, `want a JSON object of option names and values`},
		{"PATCH", "/pace/networks/lab/links/a", `{"preset": "slow4g"}`, 400, `preset "slow4g": unknown preset (did you mean slow-4g?)`},
		{"PATCH", "/pace/networks/lab/links/a", `{"rtt": 150}`, 400, `rtt: 150: values are strings, as in the config (want e.g. "150ms")`},
		{"PATCH", "/pace/networks/lab/links/a", `{"share": "x"}`, 400, `"share": not an option a live change can set`},
		{"PUT", "/pace/networks/lab/links/a", `{}`, 405, `method PUT not allowed`},
	} {
		code, body := lab.call(c.method, c.path, c.body)
		var answer struct{ Error string }
		json.Unmarshal([]byte(body), &answer)
		if code != c.code || !strings.Contains(answer.Error, c.mention) {
			t.Errorf("%s %s %s: %d %s\nwant %d and an error saying %q", c.method, c.path, c.body, code, body, c.code, c.mention)
		}
	}
	if st := lab.state("lab"); len(st.Links) != 0 {
		t.Errorf("after refused changes, links %+v, want none", st.Links)
	}
}
