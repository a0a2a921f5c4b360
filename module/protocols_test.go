package pace

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go/http3"
)

// TestEveryProtocolGetsItsChunksFlushed paces the same text over HTTP/1.1,
// HTTP/2 and HTTP/3 (TLS from Caddy's internal CA) and checks that each
// chunk reaches the client on its own, on schedule.
func TestEveryProtocolGetsItsChunksFlushed(t *testing.T) {
	text := strings.Repeat("你好, paced world! ", 3) // 57 characters
	base := startCaddyfile(t, `{
		local_certs
		skip_install_trust
		storage file_system `+t.TempDir()+`
		servers {
			protocols h1 h2 h3
		}
	}
	https://HOSTPORT {
		tls internal
		pace 10chars 100ms
		respond "`+text+`"
	}`)
	addr := strings.TrimPrefix(base, "http://") // TCP for h1 and h2, UDP for h3
	// One tls.Config each: setting up HTTP/2 adds "h2" to its transport's
	// NextProtos in place, and a shared config would make the HTTP/1.1
	// client offer h2 too, then read HTTP/2 frames as HTTP/1.1.
	insecure := func() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
	h3 := &http3.Transport{TLSClientConfig: insecure()}
	defer h3.Close()
	clients := map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{TLSClientConfig: insecure(), DisableCompression: true}},
		"HTTP/2.0": {Transport: &http.Transport{TLSClientConfig: insecure(), ForceAttemptHTTP2: true, DisableCompression: true}},
		"HTTP/3.0": {Transport: h3},
	}
	// Caddy issues its certificate in the background: wait for it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := clients["HTTP/1.1"].Get("https://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS after 15 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	chunks := (utf8.RuneCountInString(text) + 9) / 10
	for proto, client := range clients {
		t.Run(proto, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
			r := fetch(t, client, req)
			if r.Proto != proto {
				t.Fatalf("spoke %s, want %s", r.Proto, proto)
			}
			if string(r.body) != text || r.err != nil {
				t.Fatalf("body %q (%v)", r.body, r.err)
			}
			for i, rd := range r.reads[:len(r.reads)-1] {
				if n := utf8.RuneCount(rd.data); n%10 != 0 {
					t.Errorf("read %d holds %d characters, not whole chunks of 10", i, n)
				}
			}
			if len(r.reads) < chunks/2 {
				t.Errorf("%d reads for %d chunks: chunks were not flushed one by one", len(r.reads), chunks)
			}
			checkTiming(t, r, chunks, 100*time.Millisecond)
			t.Logf("%s: %d chunks in %d reads, %v", proto, chunks, len(r.reads), r.total)
		})
	}
}
