package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// caddyPace builds this binary once per test run.
func caddyPace(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy-pace")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// output is what a child process prints, safe to read while exec's
// goroutines write it.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// start runs the binary with args until the test ends, waits until addr
// answers, and returns what it prints.
func start(t *testing.T, bin, addr string, args ...string) *output {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	waitFor(t, addr, &out)
	return &out
}

// waitFor waits until addr accepts connections; out is what the server has
// printed, for the error.
func waitFor(t *testing.T, addr string, out *output) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20 s:\n%s", addr, out.String())
		}
	}
}

// timedGet fetches url and returns each read's data and the time until it;
// it gives up after 30 s.
func timedGet(t *testing.T, url string) (reads []string, ttfb, total time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if reads == nil {
				ttfb = time.Since(start)
			}
			reads = append(reads, string(buf[:n]))
		}
		if err != nil {
			break
		}
	}
	return reads, ttfb, time.Since(start)
}

func TestPaceCommandAsWritten(t *testing.T) {
	bin := caddyPace(t)

	t.Run("--root ./dir --chunk 5chars --interval 100ms", func(t *testing.T) {
		dir := t.TempDir()
		text := "你好世界, paced by the command line."
		os.WriteFile(filepath.Join(dir, "story.txt"), []byte(text), 0o644)
		addr := freePort(t)
		out := start(t, bin, addr, "pace", "--root", dir, "--chunk", "5chars", "--interval", "100ms", "--listen", addr)
		reads, _, total := timedGet(t, "http://"+addr+"/story.txt")
		if got := strings.Join(reads, ""); got != text {
			t.Fatalf("body %q", got)
		}
		for _, rd := range reads[:len(reads)-1] {
			if utf8.RuneCountInString(rd)%5 != 0 {
				t.Errorf("read %q is not whole chunks of 5 characters", rd)
			}
		}
		chunks := (utf8.RuneCountInString(text) + 4) / 5
		if want := time.Duration(chunks-1) * 100 * time.Millisecond; total < want-5*time.Millisecond || total > want+700*time.Millisecond {
			t.Errorf("%d chunks took %v, want %v", chunks, total, want)
		}
		if !strings.Contains(out.String(), "caddy pace: serving files from "+dir+" at http://"+addr+", pacing 5 chars every 100ms") {
			t.Errorf("printed:\n%s", out)
		}
	})

	t.Run("--to localhost:3000 --preset slow-4g", func(t *testing.T) {
		body := bytes.Repeat([]byte("slow network "), 13846) // 179,998 bytes
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(body)
		}))
		defer upstream.Close()
		addr := freePort(t)
		start(t, bin, addr, "pace", "--to", upstream.Listener.Addr().String(), "--preset", "slow-4g", "--listen", addr)
		reads, ttfb, total := timedGet(t, "http://"+addr+"/")
		if got := strings.Join(reads, ""); got != string(body) {
			t.Fatalf("body of %d bytes differs", len(got))
		}
		// A new connection's handshake and the request's round trip, then
		// the body at 1.6 Mbit/s of link, 1448 bytes of payload a packet.
		onLink := time.Duration(float64(len(body)) * 1500 / 1448 / 200000 * float64(time.Second))
		t.Logf("slow-4g through the command: first byte after %v, %d bytes after %v (2 RTT and %v on the link)", ttfb, len(body), total, onLink)
		if ttfb < 300*time.Millisecond || total < 300*time.Millisecond+onLink || total > time.Second+onLink {
			t.Errorf("first byte after %v, all after %v; want 2 × 150 ms, then %v on the link", ttfb, total, onLink)
		}
	})

	t.Run("the README's first command: the demo", func(t *testing.T) {
		for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:2019"} {
			if l, err := net.Listen("tcp", addr); err != nil {
				t.Skipf("SKIP: %s, which the demo names, is taken here: %v", addr, err)
			} else {
				l.Close()
			}
		}
		cmd := exec.Command(bin, "run", "--config", "caddyfile-examples/demo/Caddyfile")
		cmd.Dir = "../.." // the README runs it from the repository root
		var out output
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		waitFor(t, "127.0.0.1:8080", &out)
		for _, url := range []string{"http://localhost:8080/", "http://127.0.0.1:8080/"} {
			page, _, _ := timedGet(t, url)
			if !strings.Contains(strings.Join(page, ""), "<h1>caddy-pace</h1>") {
				t.Fatalf("%s is not the demo page but %q:\n%s", url, strings.Join(page, ""), out.String())
			}
		}
		reads, _, total := timedGet(t, "http://localhost:8080/story.txt")
		t.Logf("the demo's story.txt: %d reads over %v", len(reads), total)
		if len(reads) < 10 || total < time.Second {
			t.Errorf("story.txt in %d reads over %v: not streaming", len(reads), total)
		}

		// The README's curl switches the live network, on the admin
		// endpoint only.
		waitFor(t, "127.0.0.1:2019", &out)
		for _, c := range []struct {
			url  string
			code int
		}{{"http://localhost:2019/pace/networks/demo", http.StatusOK}, {"http://localhost:8080/pace/networks/demo", http.StatusNotFound}} {
			req, _ := http.NewRequest(http.MethodPatch, c.url, strings.NewReader(`{"preset":"offline"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("PATCH %s: %d %s, want %d", c.url, resp.StatusCode, body, c.code)
			}
		}
	})

	t.Run("--root paces files but not directory listings", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 200 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-with-a-long-name-%03d.txt", i)), []byte("x"), 0o644)
		}
		text := strings.Repeat("paced ", 10) // 60 bytes: 12 chunks, 1.1 s
		os.WriteFile(filepath.Join(dir, "story.txt"), []byte(text), 0o644)
		addr := freePort(t)
		start(t, bin, addr, "pace", "--root", dir, "--chunk", "5chars", "--interval", "100ms", "--listen", addr)
		listing, _, total := timedGet(t, "http://"+addr+"/")
		size := len(strings.Join(listing, ""))
		t.Logf("a listing of %d bytes in %v; paced, it would take %v", size, total, time.Duration(size/5)*100*time.Millisecond)
		if size < 20000 || total > 2*time.Second {
			t.Errorf("the listing (%d bytes) took %v: paced", size, total)
		}
		reads, _, total := timedGet(t, "http://"+addr+"/story.txt")
		if strings.Join(reads, "") != text || total < 1100*time.Millisecond-5*time.Millisecond {
			t.Errorf("story.txt: %d reads in %v, want 12 chunks over 1.1 s", len(reads), total)
		}
	})

	t.Run("--preset slow-4g --admin: the network changes live", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "big.bin"), bytes.Repeat([]byte("0123456789"), 100_000), 0o644)
		addr, admin := freePort(t), freePort(t)
		out := start(t, bin, addr, "pace", "--root", dir, "--preset", "slow-4g", "--listen", addr, "--admin", admin)
		waitFor(t, admin, out)
		curl := "curl -X PATCH " + admin + "/pace/networks/default -d '{\"preset\":\"offline\"}'"
		if !strings.Contains(out.String(), curl) {
			t.Errorf("the command does not print how to change its network (%q):\n%s", curl, out.String())
		}
		// As the printed curl does: a PATCH with no Origin, to offline.
		patch := func(body string) int {
			req, _ := http.NewRequest(http.MethodPatch, "http://"+admin+"/pace/networks/default", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := patch(`{"preset":"offline"}`); code != http.StatusOK {
			t.Fatalf("PATCH offline: %d", code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/big.bin", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("offline, a request got %s within 1 s", resp.Status)
		}
		if code := patch(`{"preset":"fast-4g"}`); code != http.StatusOK {
			t.Fatalf("PATCH fast-4g: %d", code)
		}
		reads, _, total := timedGet(t, "http://"+addr+"/big.bin")
		if n := len(strings.Join(reads, "")); n != 1_000_000 || total > 3*time.Second {
			t.Errorf("1 MB under fast-4g: %d bytes in %v", n, total)
		}
		if code := patch(`{"preset":"5g"}`); code != http.StatusBadRequest {
			t.Errorf("PATCH 5g: %d, want 400", code)
		}
	})

	t.Run("a second caddy pace on a port in use fails at once", func(t *testing.T) {
		dir := t.TempDir()
		addr := freePort(t)
		start(t, bin, addr, "pace", "--root", dir, "--listen", addr)
		checkRefused(t, bin, "listen tcp "+addr+": bind: address already in use", "pace", "--root", dir, "--listen", addr)
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pace", "--root", ".", "--chunk", "5", "chars"}, `unexpected argument "chars" (did you mean --chunk "5 chars"?)`},
		{[]string{"pace", "--root", ".", "--chunk=5", "chars"}, `unexpected argument "chars" (did you mean --chunk "5 chars"?)`},
		{[]string{"pace", "--root", ".", "extra"}, `unexpected argument "extra" (each flag takes one value: quote a value that has spaces)`},
		{[]string{"pace", "--root", ".", "--chunk", "5furlongs"}, `--chunk "5furlongs": unknown unit "furlongs" (want bytes, a size unit such as KiB or KB, chars, words, lines or events)`},
		{[]string{"pace", "--root", ".", "--rate", "1mbps"}, `--rate "1mbps": unknown unit "mbps" (want bytes or a size unit such as KiB or MB, or bits such as kbit or Mbit; for mbps write Mbit)`},
		{[]string{"pace", "--root", ".", "--interval", "soon"}, `--interval "soon": not a duration (want e.g. 100ms, 1.5s, 2m)`},
		{[]string{"pace", "--root", ".", "--speed", "3"}, `unknown flag: --speed`},
		{[]string{"pace"}, `give --to <upstream> to proxy, or --root <dir> to serve files`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkRefused(t, bin, tc.want, tc.args...)
		})
	}
}

// checkRefused runs the binary with args and checks that it fails at once
// with status 1 and one plain line on stderr: "caddy pace: " and want.
func checkRefused(t *testing.T, bin, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := -1
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("still running after 20 s; printed %q %q", stdout.String(), stderr.String())
	}
	if line := "caddy pace: " + want + "\n"; code != 1 || stderr.String() != line || stdout.Len() != 0 {
		t.Errorf("exit status %d, stdout %q, stderr %q\nwant status 1 and stderr %q", code, stdout.String(), stderr.String(), line)
	}
}
