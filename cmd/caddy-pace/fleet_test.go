package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAFleetKeepsAClientsLinkWhole runs two caddy-pace instances behind a
// front Caddy, as a fleet would: the front sends each client to one
// instance (lb_policy client_ip_hash), so that a client's link lives in one
// place and its two downloads share it. Spread over both instances
// (round_robin), the same client gets a link in each, twice the rate.
func TestAFleetKeepsAClientsLinkWhole(t *testing.T) {
	bin := caddyPace(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, 8<<20), 0o644)
	var backends []string
	for range 2 {
		addr := freePort(t)
		config := filepath.Join(t.TempDir(), "Caddyfile")
		os.WriteFile(config, []byte(`{
	admin off
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}
http://`+addr+` {
	root * `+root+`
	pace {
		rtt 20ms
		rate 400KB
	}
	file_server
}
`), 0o644)
		start(t, bin, addr, "run", "--config", config)
		backends = append(backends, addr)
	}
	const rate = 400_000 * 1448 / 1500.0 // the link's payload rate
	for _, tc := range []struct {
		policy string
		want   float64 // the two downloads together, over the link's rate
	}{{"client_ip_hash", 1}, {"round_robin", 2}} {
		t.Run(tc.policy, func(t *testing.T) {
			front := freePort(t)
			config := filepath.Join(t.TempDir(), "Caddyfile")
			os.WriteFile(config, []byte(`{
	admin off
}
http://`+front+` {
	reverse_proxy `+strings.Join(backends, " ")+` {
		lb_policy `+tc.policy+`
		flush_interval -1
	}
}
`), 0o644)
			start(t, bin, front, "run", "--config", config)
			// One client, 127.0.0.5, two downloads at once, each on a
			// connection of its own.
			var got [2]int64
			var wg sync.WaitGroup
			for i := range got {
				wg.Go(func() { got[i] = bytesBetween(t, "127.0.0.5", "http://"+front+"/big.bin", time.Second, 3*time.Second) })
			}
			wg.Wait()
			together := float64(got[0]+got[1]) / 2 / rate
			t.Logf("%s: the two downloads got %d and %d bytes from 1 s to 3 s: together %.2f × the link's rate", tc.policy, got[0], got[1], together)
			if together < tc.want*0.9 || together > tc.want*1.05 {
				t.Errorf("together %.2f × the link's rate, want %.0f ×", together, tc.want)
			}
		})
	}
}

// bytesBetween downloads url from the local address ip and returns how many
// bytes arrived from from to to after the request.
func bytesBetween(t *testing.T, ip, url string, from, to time.Duration) int64 {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}}
	ctx, cancel := context.WithTimeout(context.Background(), to)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	started := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := resp.Body.Read(buf)
		if time.Since(started) >= from {
			n += int64(m)
		}
		if err == io.EOF || err != nil {
			return n
		}
	}
}
