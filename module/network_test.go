package pace

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// clientFrom returns a client whose connections come from ip, a loopback
// address of its own: a client of its own, with a link of its own.
func clientFrom(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}}
}

// linkCostOf is what n bytes of payload cost on a link, in the pieces a
// Stream books at rate: 52 bytes of headers for every segment.
func linkCostOf(n int, rate float64) float64 {
	piece, cost := pacing.PieceSize(rate), 0
	for ; n > 0; n -= piece {
		p := min(n, piece)
		cost += p + (p+pacing.SegmentSize-1)/pacing.SegmentSize*(pacing.PacketSize-pacing.SegmentSize)
	}
	return float64(cost)
}

func secondsOf(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// upload posts n bytes to base's /upload and returns how long the upstream
// took to read them.
func upload(t *testing.T, client *http.Client, base string, n int) time.Duration {
	t.Helper()
	resp, err := client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(make([]byte, n)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got, readMs int64
	fmt.Sscanf(string(body), "%d %d", &got, &readMs)
	if got != int64(n) {
		t.Fatalf("the upstream read %d bytes of %d", got, n)
	}
	return time.Duration(readMs) * time.Millisecond
}

func TestSlow4GIsTheLinkItNames(t *testing.T) {
	const size, up = 360000, 168750
	t.Run("model link: 150 ms, 1.6 Mbit/s down, 750 kbit/s up", func(t *testing.T) {
		base := pacedProxy(t, "pace slow-4g")
		r := get(t, base+"/bytes/"+strconv.Itoa(size))
		if len(r.body) != size || r.err != nil {
			t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
		}
		// A new connection: the TCP handshake and the request's round
		// trip, 300 ms; then the body at 200,000 B/s of link, 1448 bytes
		// of it in every 1500, after slow start.
		onLink := secondsOf(linkCostOf(size, 200000) / 200000)
		rate := measuredRate(r)
		t.Logf("slow-4g download of %d B: first byte after %v (2 RTT: 300 ms), all after %v (2 RTT + %v on the link, and slow start); %.0f B/s, the link's payload rate is %.0f",
			size, r.ttfb, r.total, onLink, rate, 200000*1448/1500.0)
		if !within(r.ttfb, 300*time.Millisecond, 0, slack) {
			t.Errorf("first byte after %v, want 300 ms", r.ttfb)
		}
		if !within(r.total, 300*time.Millisecond+onLink, 5*time.Millisecond, 300*time.Millisecond+slack) || rate > 200000*1448/1500*1.01 {
			t.Errorf("all after %v at %.0f B/s", r.total, rate)
		}
		read := upload(t, http.DefaultClient, base, up)
		onLink = secondsOf(linkCostOf(up, 93750) / 93750)
		t.Logf("slow-4g upload of %d B: the upstream read it in %v (%v on a 750 kbit/s link)", up, read, onLink)
		if !within(read, onLink, 10*time.Millisecond, slack) {
			t.Errorf("the upstream read it in %v, want %v", read, onLink)
		}
	})
	t.Run("model devtools: Chrome DevTools' numbers, its way", func(t *testing.T) {
		base := pacedProxy(t, "pace {\n preset slow-4g\n model devtools\n}")
		r := get(t, base+"/bytes/"+strconv.Itoa(size))
		if len(r.body) != size || r.err != nil {
			t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
		}
		rate := measuredRate(r)
		t.Logf("slow-4g (devtools) download of %d B: first byte after %v (latency 562.5 ms), all after %v (want 2.5625 s), %.0f B/s (want 180,000)",
			size, r.ttfb, r.total, rate)
		if !within(r.ttfb, 562500*time.Microsecond, 0, 100*time.Millisecond+slack) {
			t.Errorf("first byte after %v, want 562.5 ms", r.ttfb)
		}
		if !within(r.total, 2562500*time.Microsecond, 5*time.Millisecond, slack) || rate > 180000*1.01 {
			t.Errorf("all after %v at %.0f B/s", r.total, rate)
		}
		if read := upload(t, http.DefaultClient, base, up); !within(read, 2*time.Second, 10*time.Millisecond, slack) {
			t.Errorf("the upstream read %d bytes in %v, want 2 s at 84,375 B/s", up, read)
		}
	})
}

func TestANewConnectionPaysItsHandshakes(t *testing.T) {
	// An RTT and no rate: only round trips take time.
	const rtt = 200 * time.Millisecond
	const site = "pace {\n rtt 200ms\n}\nrespond hello"
	for _, tc := range []struct {
		name   string
		start  func() string
		client func() *http.Client
		first  time.Duration // a new connection's first response
	}{
		{"HTTP/1.1: TCP, 1 RTT",
			func() string { return startCaddyfile(t, "ADDR {\n"+site+"\n}") },
			func() *http.Client { return clientFrom("127.0.0.1") }, 2 * rtt},
		{"HTTP/2 over TLS 1.3: 2 RTT",
			func() string { return startTLS(t, site) },
			func() *http.Client {
				return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
			}, 3 * rtt},
		// A QUIC connection: TLS in one round trip, with no TCP before.
		{"HTTP/3 over QUIC: 1 RTT",
			func() string { return startTLS(t, site) },
			func() *http.Client {
				return &http.Client{Transport: &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			}, 2 * rtt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.start()
			client := tc.client()
			first := fetch(t, client, newRequest(t, http.MethodGet, base+"/"))
			reused := fetch(t, client, newRequest(t, http.MethodGet, base+"/"))
			second := fetch(t, tc.client(), newRequest(t, http.MethodGet, base+"/"))
			t.Logf("%s: a new connection's first response after %v, a reused one's after %v, a second connection's first after %v",
				first.Proto, first.ttfb, reused.ttfb, second.ttfb)
			if !within(first.ttfb, tc.first, 0, slack) || !within(second.ttfb, tc.first, 0, slack) {
				t.Errorf("first responses after %v and %v, want %v", first.ttfb, second.ttfb, tc.first)
			}
			if !within(reused.ttfb, rtt, 0, slack) || reused.ttfb > tc.first-rtt/2 {
				t.Errorf("a reused connection's response after %v, want %v", reused.ttfb, rtt)
			}
		})
	}
}

// startTLS runs a site over HTTPS (HTTP/1.1 and HTTP/2) with Caddy's
// internal CA, waits for its certificate and returns its base URL.
func startTLS(t *testing.T, site string) string {
	t.Helper()
	base := startCaddyfile(t, `{
		local_certs
		skip_install_trust
		storage file_system `+t.TempDir()+`
	}
	https://HOSTPORT {
		tls internal
		`+site+`
	}`)
	base = "https://" + strings.TrimPrefix(base, "http://")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS after 15 s: %v", err)
		}
	}
}

func TestSlowStartShapesTheFirstRoundTrips(t *testing.T) {
	// An RTT and no rate: a new connection's window lets 10 segments into
	// flight in the first round trip, then 20, 40, 80: 15 windows of body
	// (and the head) arrive in 5 round trips, the first at once.
	const rtt = 200 * time.Millisecond
	base := pacedProxy(t, "pace {\n rtt 200ms\n}")
	size := 15 * pacing.InitialWindow
	r := get(t, base+"/bytes/"+strconv.Itoa(size))
	if len(r.body) != size || r.err != nil {
		t.Fatalf("body %d bytes (%v)", len(r.body), r.err)
	}
	firstRound := 0
	for _, rd := range r.reads {
		if rd.at < r.ttfb+rtt/2 {
			firstRound += len(rd.data)
		}
	}
	t.Logf("%d bytes: first byte after %v, %d bytes in the first round trip, all after %v (%.1f round trips after the first byte)",
		size, r.ttfb, firstRound, r.total, float64(r.total-r.ttfb)/float64(rtt))
	if firstRound > pacing.InitialWindow {
		t.Errorf("%d bytes in the first round trip, more than the initial window of %d", firstRound, pacing.InitialWindow)
	}
	if !within(r.total-r.ttfb, 4*rtt, 5*time.Millisecond, slack) {
		t.Errorf("the body took %v after its first byte, want 4 round trips, %v", r.total-r.ttfb, 4*rtt)
	}
}

// readFor reads a download of url by client for d and returns how many
// bytes had arrived by from and by d.
func readFor(t *testing.T, client *http.Client, url string, from, d time.Duration) (atFrom, atEnd int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if time.Since(start) < from {
			atFrom += int64(n)
		}
		atEnd += int64(n)
		if err != nil {
			return atFrom, atEnd
		}
	}
}

func TestTwoDownloadsOfOneClientShareItsLink(t *testing.T) {
	// Two downloads at once from one client, over two connections, through
	// a 500 KB/s link; a third client has a link of its own. With a fair
	// queue they get half of it each; through the default queue, first in
	// first out, the one with the wider window takes more, and together
	// they fill the link all the same.
	const rate = 500_000
	for _, queue := range []string{"fair", "1000 packets"} {
		t.Run("queue "+queue, func(t *testing.T) {
			base := pacedProxy(t, "pace {\n rtt 50ms\n rate 500KB\n queue "+queue+"\n}")
			const from, to = time.Second, 3 * time.Second
			var got [3]int64
			var wg sync.WaitGroup
			for i, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2"} {
				wg.Go(func() {
					atFrom, atEnd := readFor(t, clientFrom(ip), base+"/bytes/"+strconv.Itoa(10<<20), from, to)
					got[i] = atEnd - atFrom
				})
			}
			wg.Wait()
			payload := rate * 1448 / 1500.0 * (to - from).Seconds()
			share := float64(got[0]) / float64(got[0]+got[1]) * 100
			t.Logf("from 1 s to 3 s: %d and %d bytes on one client's link (%.1f%% / %.1f%%, together %.1f%% of its payload rate); %d bytes on another's (%.1f%%)",
				got[0], got[1], share, 100-share, float64(got[0]+got[1])/payload*100, got[2], float64(got[2])/payload*100)
			if queue == "fair" && (share < 45 || share > 55) {
				t.Errorf("shares %.1f%% and %.1f%%, want 50/50 ± 5%%", share, 100-share)
			}
			// The window is counted by when the client read, not when the
			// bytes arrived: a reader the scheduler runs late at the 1 s
			// mark counts bytes that came before it. 3% is 60 ms of the
			// link; the exact rate is held on a fake clock in pacing/.
			// CI once saw 101.1% here with a 1% margin.
			for _, n := range []int64{got[0] + got[1], got[2]} {
				if sum := float64(n) / payload; sum < 0.95 || sum > 1.03 {
					t.Errorf("a link carried %d bytes of payload in 2 s, want %.0f", n, payload)
				}
			}
		})
	}
}

func TestAnUploadAndADownloadOfOneClientDoNotSlowEachOther(t *testing.T) {
	base := pacedProxy(t, "pace {\n rtt 50ms\n rate 400KB\n upload_rate 200KB\n}")
	const down, up = 400_000, 200_000
	client := clientFrom("127.0.0.3")
	downAlone := get(t, base+"/bytes/"+strconv.Itoa(down)).total
	upAlone := upload(t, client, base, up)
	// The upload starts once the download's request has gone up: a
	// request sent behind an upload waits in the up queue (as
	// TestARequestBehindATransferWaitsForTheQueue shows), and how long
	// depends on which goroutine ran first (1.18 to 1.42 s here). What
	// this test holds is that the two ways' rates are apart.
	var downBoth, upBoth time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		downBoth = fetch(t, client, newRequest(t, http.MethodGet, base+"/bytes/"+strconv.Itoa(down))).total
	})
	wg.Go(func() {
		time.Sleep(300 * time.Millisecond)
		upBoth = upload(t, client, base, up)
	})
	wg.Wait()
	t.Logf("400 KB down: %v alone, %v during an upload; 200 KB up: %v alone, %v during a download", downAlone, downBoth, upAlone, upBoth)
	if downBoth > downAlone*11/10+slack/2 || upBoth > upAlone*11/10+slack/2 {
		t.Errorf("one slowed the other: down %v (alone %v), up %v (alone %v)", downBoth, downAlone, upBoth, upAlone)
	}
}

func TestANetworkNeverChangesAResponse(t *testing.T) {
	root := t.TempDir()
	text := strings.Repeat("a network carries bytes, it does not change them. ", 200)
	os.WriteFile(filepath.Join(root, "a.txt"), []byte(text), 0o644)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		handle_path /paced/* {
			pace {
				rtt 10ms
				rate 10MB
			}
			file_server
		}
		handle_path /plain/* {
			file_server
		}
	}`)
	for _, dest := range []string{"", "empty", "document", "script"} {
		r := get(t, base+"/paced/a.txt", "Sec-Fetch-Dest", dest)
		want := get(t, base+"/plain/a.txt", "Sec-Fetch-Dest", dest)
		r.Header.Del("Date")
		want.Header.Del("Date")
		if string(r.body) != text || fmt.Sprint(r.Header) != fmt.Sprint(want.Header) {
			t.Errorf("Sec-Fetch-Dest %q: headers %v\nwant     %v", dest, r.Header, want.Header)
		}
	}
}

func TestLinksSurviveAReload(t *testing.T) {
	// A download fills a client's 200 KB/s link; the config is reloaded
	// (the same network); a second download of the same client shares the
	// link with the first, which is still in flight on the old config.
	// A fair queue, so that sharing the link is half of it each.
	const rate = 200_000
	config := "ADDR {\n\tpace {\n\t\trtt 20ms\n\t\trate 200KB\n\t\tqueue fair\n\t}\n\treverse_proxy " + testUpstream(t) + "\n}"
	links := func() (holder *pacing.Links, refs int) {
		sharedLinks.Range(func(_, v any) bool {
			holder = v.(linksHolder).Links
			return false
		})
		refs, _ = sharedLinks.References(sharedLinksKey)
		return holder, refs
	}
	base := startCaddyfile(t, config)
	first, _ := links()
	var wg sync.WaitGroup
	var inFlight int64
	wg.Go(func() {
		_, inFlight = readFor(t, clientFrom("127.0.0.4"), base+"/bytes/"+strconv.Itoa(10<<20), 0, 4*time.Second)
	})
	time.Sleep(500 * time.Millisecond)
	reloaded := startCaddyfile(t, config) // a new port: links are keyed by client, not by server
	second, refs := links()
	if second == nil || second != first || refs != 1 {
		t.Fatalf("after a reload the links are %p (were %p), %d references", second, first, refs)
	}
	atFrom, atEnd := readFor(t, clientFrom("127.0.0.4"), reloaded+"/bytes/"+strconv.Itoa(10<<20), time.Second, 3*time.Second)
	wg.Wait()
	got := float64(atEnd-atFrom) / 2
	half := rate * 1448 / 1500.0 / 2
	t.Logf("after the reload, a second download got %.0f B/s while the first was in flight (it got %d bytes in 4 s); half the link is %.0f B/s", got, inFlight, half)
	if got < half*0.85 || got > half*1.15 {
		t.Errorf("the second download got %.0f B/s, want half the link, %.0f B/s", got, half)
	}
}
