package pace

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestNextHandlerIsReadOnlyAsFastAsChunksLeave(t *testing.T) {
	base := startJSON(t, `[{"handle": [
		{"handler": "pace", "chunk": "1KiB", "interval": "100ms"},
		{"handler": "pace_test_source", "size": 1048576, "write_size": 1024}
	]}]`)
	sourceAccepted.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(550 * time.Millisecond)
	// Chunks 0…5 have left by now and the write of chunk 6 waits for its
	// slot: the source has had 6 or 7 KiB taken, not its whole MiB.
	accepted := sourceAccepted.Load()
	t.Logf("after 550 ms the source had %d bytes taken", accepted)
	if accepted > 8<<10 {
		t.Errorf("the source had %d bytes taken in 550 ms at 1 KiB / 100 ms: no back pressure", accepted)
	}
	if accepted < 4<<10 {
		t.Errorf("the source had only %d bytes taken in 550 ms at 1 KiB / 100 ms", accepted)
	}
}

func TestClientThatGoesAwayReleasesTheUpstream(t *testing.T) {
	upstreamDone := make(chan time.Time, 1)
	base := proxyPaced(t, "10 500ms", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { upstreamDone <- time.Now() }()
		rc := http.NewResponseController(w)
		for i := 0; i < 1000; i++ { // 10 s at most
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				return
			}
			rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	// The pacer now sleeps 500 ms before its next chunk; leave in the middle.
	time.Sleep(100 * time.Millisecond)
	left := time.Now()
	cancel()
	resp.Body.Close()

	select {
	case at := <-upstreamDone:
		t.Logf("upstream request ended %v after the client left", at.Sub(left))
		if d := at.Sub(left); d > 400*time.Millisecond {
			t.Errorf("the upstream request ended %v after the client left: pacing slept on a dead connection", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was still running 5 s after the client left")
	}
}

// hashResponse streams a body into a hash without keeping it, and reports
// the highest heap in use while it did, sampled every few milliseconds.
func hashResponse(t *testing.T, url string) (sum []byte, n int64, peakHeap uint64) {
	t.Helper()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h hash.Hash = sha256.New()
	n, err = io.Copy(h, resp.Body)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	return h.Sum(nil), n, peak.Load()
}

// bigBody is the size of the bodies that show memory stays flat.
const bigBody = 100 << 20

// patternReader yields the same bytes for the same length, without holding them.
type patternReader struct{ off, size int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-p.off))
	for i := range b[:n] {
		x := uint64(p.off + int64(i))
		b[i] = byte(x*2654435761>>13) ^ byte(x>>8)
	}
	p.off += int64(n)
	return n, nil
}

func patternSum(size int64) []byte {
	h := sha256.New()
	io.Copy(h, &patternReader{size: size})
	return h.Sum(nil)
}

func TestHundredMiBBodiesKeepMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the two 100 MiB bodies")
	}
	want := patternSum(bigBody)
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, &patternReader{size: bigBody}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pattern")
		io.Copy(w, &patternReader{size: bigBody}) // no Content-Length: chunked
	}))
	defer upstream.Close()

	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace 64KiB 1ms
		handle /big.bin {
			file_server
		}
		reverse_proxy `+upstream.Listener.Addr().String()+`
	}`)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse

	for _, path := range []string{"/big.bin", "/proxied"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			start := time.Now()
			sum, n, peak := hashResponse(t, base+path)
			growth := int64(peak) - int64(baseline)
			t.Logf("%d MiB in %v; heap in use grew by at most %.1f MiB", n>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
			if n != bigBody || string(sum) != string(want) {
				t.Fatalf("got %d bytes with sha256 %x, want %d bytes with %x", n, sum, bigBody, want)
			}
			// Client, Caddy and upstream share this process; a body held
			// whole anywhere would add 100 MiB.
			if growth > 24<<20 {
				t.Errorf("heap in use grew by %d MiB while a 100 MiB body was paced", growth>>20)
			}
		})
	}
}

func TestResponsesWithoutABodyPassThrough(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte(strings.Repeat("x", 5000)), 0o644)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace 1KiB 1s
		respond /nothing 204
		file_server
	}`)
	etag := get(t, base+"/a.txt", "Range", "bytes=0-0").Header.Get("Etag")

	tests := []struct {
		name, method, path string
		header             []string
		status             int
	}{
		{"HEAD", http.MethodHead, "/a.txt", nil, 200},
		{"204", http.MethodGet, "/nothing", nil, 204},
		{"304", http.MethodGet, "/a.txt", []string{"If-None-Match", etag}, 304},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fetch(t, nil, newRequest(t, tc.method, base+tc.path, tc.header...))
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if r.Header.Get("X-Accel-Buffering") != "" {
				t.Error("a response without a body was treated as paced")
			}
			if tc.method == http.MethodHead && r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("HEAD Content-Type = %q, want the file's own", r.Header.Get("Content-Type"))
			}
			if r.total > 500*time.Millisecond {
				t.Errorf("took %v: a response without a body was held", r.total)
			}
		})
	}
}

func TestRangeRequestIsPacedAndExact(t *testing.T) {
	root := t.TempDir()
	body := randomBytes(8000, 7)
	os.WriteFile(filepath.Join(root, "r.bin"), body, 0o644)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace 1KiB 50ms
		file_server
	}`)
	r := get(t, base+"/r.bin", "Range", "bytes=1000-4999")
	if r.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", r.StatusCode)
	}
	if string(r.body) != string(body[1000:5000]) {
		t.Fatal("range body differs")
	}
	if cr := r.Header.Get("Content-Range"); cr != "bytes 1000-4999/8000" {
		t.Errorf("Content-Range = %q", cr)
	}
	checkTiming(t, r, 4, 50*time.Millisecond)
}

func TestTrailersPassThrough(t *testing.T) {
	base := proxyPaced(t, "1KiB 20ms", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Write([]byte(strings.Repeat("t", 3000)))
		w.Header().Set("X-Checksum", "abc123")
	}))
	r := get(t, base+"/")
	if len(r.body) != 3000 {
		t.Fatalf("body has %d bytes, want 3000", len(r.body))
	}
	if got := r.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q, want abc123", got)
	}
}

func TestEarlyHintsPassThrough(t *testing.T) {
	base := startJSON(t, `[{"handle": [
		{"handler": "pace", "chunk": "1KiB", "interval": "20ms"},
		{"handler": "pace_test_source", "size": 3000, "write_size": 3000, "early_hints": true}
	]}]`)
	var hints []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		hints = append(hints, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, base+"/", nil)
	r := fetch(t, nil, req)
	if len(hints) != 1 || hints[0] != http.StatusEarlyHints {
		t.Errorf("1xx responses seen: %v, want [103]", hints)
	}
	if r.StatusCode != 200 || len(r.body) != 3000 || r.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("final response: %d, %d bytes, headers %v", r.StatusCode, len(r.body), r.Header)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	base := proxyPaced(t, "1 1s", websocket.Handler(func(ws *websocket.Conn) {
		io.Copy(ws, ws) // echo
	}))
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/"
	ws, err := websocket.Dial(wsURL, "", base)
	if err != nil {
		t.Fatalf("WebSocket through pace: %v", err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	for _, msg := range []string{"hello", "你好", strings.Repeat("z", 10000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		// the echo server may answer one message in several frames
		var echo string
		for len(echo) < len(msg) {
			var part string
			if err := websocket.Message.Receive(ws, &part); err != nil {
				t.Fatal(err)
			}
			echo += part
		}
		if echo != msg {
			t.Fatalf("echo of %d bytes differs from the %d-byte message", len(echo), len(msg))
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("three echoes took %v: the tunnel was paced", d)
	}
}
