package pace

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/http2"
	"golang.org/x/net/websocket"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// echoUpstream is a WebSocket server that sends back every message it
// receives, and says on received when each arrived whole.
func echoUpstream(t *testing.T) (addr string, received chan time.Time) {
	received = make(chan time.Time, 16)
	srv := httptest.NewServer(websocket.Server{Handler: func(ws *websocket.Conn) {
		for {
			var msg []byte
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			received <- time.Now()
			if err := websocket.Message.Send(ws, msg); err != nil {
				return
			}
		}
	}})
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), received
}

// dialFrom opens a WebSocket to url from the loopback address ip.
func dialFrom(t *testing.T, ip, url string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig(url, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("WebSocket to %s: %v", url, err)
	}
	return ws
}

// tcpTime is how long n bytes of payload, written at once, take one way on
// a link of rate bytes per second and round-trip time rtt, from a TCP
// connection whose window starts at 10 packets (new, or idle for a while)
// and doubles every round trip: while the window is smaller than the round
// trip's worth of packets, a round trip for each window; then the rest at
// the link's rate; and half a round trip to arrive.
func tcpTime(n int, rate float64, rtt time.Duration) time.Duration {
	packets := (n + pacing.SegmentSize - 1) / pacing.SegmentSize
	perPacket := pacing.PacketSize / rate // seconds
	t, window := 0.0, 10
	for float64(window)*perPacket < rtt.Seconds() && packets > window {
		t += rtt.Seconds()
		packets -= window
		window *= 2
	}
	return secondsOf(t+float64(packets)*perPacket) + rtt/2
}

// echoRounds echoes a 100 KB message through pace slow-4g twice, with send
// and receive, timing each way (received says when the upstream had it):
// up at 750 kbit/s, down at 1.6 Mbit/s, after half of 150 ms each. Each way
// starts from a window of 10 packets (new, or idle for longer than a
// retransmission timeout, as Linux restarts it), which down takes a round
// trip to open.
func echoRounds(t *testing.T, proto string, received chan time.Time, send func([]byte) error, receive func() ([]byte, error)) {
	t.Helper()
	const size, rtt = 100_000, 150 * time.Millisecond
	const frameUp, frameDown = 14, 10 // a binary frame's head, masked from the client
	wantUp := tcpTime(size+frameUp, 750e3/8, rtt)
	wantDown := tcpTime(size+frameDown, slow4G, rtt)
	for round := 1; round <= 2; round++ {
		msg := randomBytes(size, uint64(round))
		sent := time.Now()
		if err := send(msg); err != nil {
			t.Fatal(err)
		}
		var arrived time.Time
		select {
		case arrived = <-received:
		case <-time.After(10 * time.Second):
			t.Fatal("the message never reached the upstream")
		}
		echo, err := receive()
		back := time.Now()
		if err != nil || !bytes.Equal(echo, msg) {
			t.Fatalf("round %d: the echo is not the message (%d bytes of %d, %v)", round, len(echo), len(msg), err)
		}
		up, down := arrived.Sub(sent), back.Sub(arrived)
		t.Logf("%s round %d: 100 KB up in %v (the link says %v, %+.1f%%), down in %v (%v, %+.1f%%), frames intact",
			proto, round, up.Round(time.Millisecond), wantUp.Round(time.Millisecond), percentOff(up, wantUp),
			down.Round(time.Millisecond), wantDown.Round(time.Millisecond), percentOff(down, wantDown))
		if !within(up, wantUp, wantUp/10, wantUp/10) || !within(down, wantDown, wantDown/10, wantDown/10) {
			t.Errorf("100 KB took %v up and %v down, want %v and %v (±10%%)", up, down, wantUp, wantDown)
		}
	}
}

func TestAWebSocketGoesThroughTheClientsLink(t *testing.T) {
	upstream, received := echoUpstream(t)
	base := startCaddyfile(t, "ADDR {\n\tpace slow-4g\n\treverse_proxy "+upstream+"\n}")
	ws := dialFrom(t, "127.0.0.41", "ws"+strings.TrimPrefix(base, "http")+"/echo")
	defer ws.Close()

	echoRounds(t, "HTTP/1.1", received, func(msg []byte) error { return websocket.Message.Send(ws, msg) }, func() ([]byte, error) {
		var echo []byte
		err := websocket.Message.Receive(ws, &echo)
		return echo, err
	})

	// Closing the WebSocket releases the link at once.
	ws.Close()
	deadline := time.Now().Add(2 * time.Second)
	for sharedLinksHeld() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := sharedLinksHeld(); n > 0 {
		t.Errorf("%d links still used 2 s after the WebSocket closed", n)
	}
}

// sharedLinksHeld is how many links have exchanges in flight.
func sharedLinksHeld() int {
	held := 0
	sharedLinks.Range(func(_, v any) bool {
		held = v.(linksHolder).Links.InUse()
		return false
	})
	return held
}

func percentOff(got, want time.Duration) float64 {
	return (got.Seconds()/want.Seconds() - 1) * 100
}

func TestUpgradesPassUntouchedOutsideANetwork(t *testing.T) {
	upstream, _ := echoUpstream(t)
	base := startCaddyfile(t, "ADDR {\n\tpace 1KiB 1s\n\treverse_proxy "+upstream+"\n}")
	ws := dialFrom(t, "127.0.0.42", "ws"+strings.TrimPrefix(base, "http")+"/echo")
	defer ws.Close()
	msg := bytes.Repeat([]byte("0123456789"), 100_000)
	start := time.Now()
	websocket.Message.Send(ws, msg)
	var echo []byte
	if err := websocket.Message.Receive(ws, &echo); err != nil || !bytes.Equal(echo, msg) {
		t.Fatalf("echo of 1 MB: %d bytes (%v)", len(echo), err)
	}
	if took := time.Since(start); took > slack {
		t.Errorf("1 MB each way took %v outside a network, want no pacing", took)
	}
}

// pushUpstream is a WebSocket server that sends numbered 10,000-byte
// text messages as fast as its connection takes them.
func pushUpstream(t *testing.T) string {
	srv := httptest.NewServer(websocket.Server{Handler: func(ws *websocket.Conn) {
		for i := 0; ; i++ {
			head := fmt.Sprintf("%d:", i)
			if websocket.Message.Send(ws, head+strings.Repeat("x", 10_000-len(head))) != nil {
				return
			}
		}
	}})
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// wsPage is a page that opens a WebSocket to /push, and logs each
// message's arrival and whether it came whole and in order.
const wsPage = `<!doctype html><title>ws</title><script>
window.wsLog = {t: [], bad: 0, opened: false};
const ws = new WebSocket("ws://" + location.host + "/push");
ws.onopen = () => { wsLog.opened = true; };
ws.onmessage = (e) => {
	const n = parseInt(e.data);
	if (e.data.length !== 10000 || n !== wsLog.t.length) wsLog.bad++;
	wsLog.t.push(performance.now());
};
</script>`

func TestAWebSocketInChromiumFollowsTheLiveNetwork(t *testing.T) {
	exec := chromium(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(wsPage), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := startLive(t, `ADDR {
		pace {
			preset slow-4g
			name lab
		}
		handle /push {
			reverse_proxy `+pushUpstream(t)+`
		}
		root * `+dir+`
		file_server
	}`)
	ctx := browser(t, exec, 60*time.Second)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(lab.site+"/")); err != nil {
		t.Fatal(err)
	}
	type wsLog struct {
		T      []float64
		Bad    int
		Opened bool
		Now    float64
	}
	read := func() wsLog {
		l, err := chromedp.Run(ctx, chromedp.Evaluate[wsLog](`({...wsLog, now: performance.now()})`))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// in is how many messages arrived in the page's [from, to) ms.
	in := func(l wsLog, from, to float64) int {
		n := 0
		for _, at := range l.T {
			if at >= from && at < to {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); !read().Opened; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the WebSocket did not open")
		}
	}
	time.Sleep(3 * time.Second)
	before := read()
	online := float64(in(before, before.Now-2000, before.Now)) * 10_000 / 2
	lab.change("lab", `{"preset": "offline"}`)
	offAt := read().Now
	time.Sleep(1500 * time.Millisecond)
	during := read()
	lab.call(http.MethodDelete, "/pace/networks/lab", "")
	backAt := read().Now
	time.Sleep(2 * time.Second)
	after := read()
	quiet := in(during, offAt+150, during.Now)
	resumed := float64(in(after, backAt+500, after.Now)) * 10_000 / ((after.Now - backAt - 500) / 1000)
	t.Logf("in Chromium: %.0f B/s of messages under slow-4g (its payload rate %.0f); %d messages from 150 ms after going offline to 1.5 s; %.0f B/s once back; %d messages, %d not whole or out of order",
		online, payloadRate(slow4G), quiet, resumed, len(after.T), after.Bad)
	if online < payloadRate(slow4G)*0.9 || online > payloadRate(slow4G)*1.1 {
		t.Errorf("messages arrived at %.0f B/s, want slow-4g's %.0f (±10%%)", online, payloadRate(slow4G))
	}
	if quiet != 0 {
		t.Errorf("%d messages arrived while the network was offline", quiet)
	}
	if resumed < payloadRate(slow4G)*0.8 {
		t.Errorf("messages arrived at %.0f B/s once the network was back, want slow-4g's %.0f", resumed, payloadRate(slow4G))
	}
	if after.Bad != 0 {
		t.Errorf("%d messages were not whole or came out of order", after.Bad)
	}
}

// h2Child names the child process of the HTTP/2 WebSocket test: Go's
// HTTP/2 server offers extended CONNECT (RFC 8441) only with
// GODEBUG=http2xconnect=1 in the environment when the process starts.
const h2Child = "PACE_TEST_H2_WEBSOCKET"

func TestAWebSocketOverHTTP2GoesThroughTheLink(t *testing.T) {
	if os.Getenv(h2Child) == "" {
		cmd := osexec.Command(os.Args[0], "-test.run=^TestAWebSocketOverHTTP2GoesThroughTheLink$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), h2Child+"=1", "GODEBUG=http2xconnect=1")
		out, err := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "tunnel_test.go") {
				t.Log(strings.TrimSpace(line))
			}
		}
		if err != nil {
			t.Fatalf("the test with GODEBUG=http2xconnect=1: %v\n%s", err, out)
		}
		return
	}
	upstream, received := echoUpstream(t)
	base := startTLS(t, "pace slow-4g\n\t\treverse_proxy "+upstream)
	// x/net's HTTP/2 client: net/http's refuses the :protocol field.
	client := &http.Client{Transport: &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			dialer := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.44")}}, Config: cfg}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	up, toServer := io.Pipe()
	req, _ := http.NewRequest(http.MethodConnect, base+"/echo", up)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Origin", "http://localhost/")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	defer resp.Body.Close()
	defer toServer.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("extended CONNECT: %s over HTTP/%d", resp.Status, resp.ProtoMajor)
	}

	echoRounds(t, "HTTP/2", received, func(msg []byte) error {
		go toServer.Write(clientFrame(msg))
		return nil
	}, func() ([]byte, error) { return readServerFrame(resp.Body) })
}

// clientFrame is a masked binary WebSocket frame of payload, as a client
// sends it (RFC 6455, 5.2).
func clientFrame(payload []byte) []byte {
	frame := []byte{0x82, 0x80 | 127}
	frame = binary.BigEndian.AppendUint64(frame, uint64(len(payload)))
	mask := []byte{1, 2, 3, 4}
	frame = append(frame, mask...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	return frame
}

// readServerFrame reads one unmasked WebSocket frame and returns its
// payload.
func readServerFrame(r io.Reader) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		ext := make([]byte, 2)
		if _, err := io.ReadFull(r, ext); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext))
	case 127:
		ext := make([]byte, 8)
		if _, err := io.ReadFull(r, ext); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(ext)
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(r, payload)
	return payload, err
}
