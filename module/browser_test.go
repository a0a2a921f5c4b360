package pace

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive. Without one the browser tests skip,
// saying why, except in CI, which installs it and must run them.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no Chromium (looked for %s); CI must run the browser tests", strings.Join(names, ", "))
	}
	t.Skipf("SKIP: no Chromium on this machine (looked for %s); `apt-get install chromium` to run the browser tests; CI installs it and never skips them", strings.Join(names, ", "))
	return ""
}

// browser starts a headless Chromium (exec) with a fresh profile, for at
// most timeout, closed when the test ends, and returns a tab's context.
func browser(t *testing.T, exec string, timeout time.Duration) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1200, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// panelStep is one growth of a panel's visible text, as the page logs it.
type panelStep struct {
	T      float64 `json:"t"` // ms since the panel's request
	Length int     `json:"length"`
}

// demoLog is the page's window.paceLog (JSON names match case-insensitively).
type demoLog struct {
	Fetch, XHR, SSE, Try                 []panelStep
	FetchDone, XHRDone, SSEDone, TryDone bool
	SSEData                              []string
	Image                                *struct {
		T             float64 // ms until loaded
		Width, Height int
	}
}

func (l *demoLog) done() bool {
	return l.FetchDone && l.XHRDone && l.SSEDone && l.TryDone && l.Image != nil
}

func TestDemoStreamsInARealBrowser(t *testing.T) {
	exec := chromium(t)
	t.Chdir("..")
	src, err := os.ReadFile("caddyfile-examples/demo/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	base := runExample(t, cfg)
	page := strings.Replace(base, "127.0.0.1", "localhost", 1) + "/" // the demo serves the host localhost

	ctx := browser(t, exec, 90*time.Second)

	// Mid-stream (the load event waits for the image, 1.6 s), a screenshot
	// for people.
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatalf("loading %s in Chromium: %v", page, err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	saveArtifact(t, "demo-midstream.png", shot)

	log := waitForDemo(t, ctx)
	story, _ := os.ReadFile("caddyfile-examples/demo/site/story.txt")
	texts, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Fetch, XHR, SSE, Try string }](
		`({fetch: document.getElementById("fetch-text").textContent,
		xhr: document.getElementById("xhr-text").textContent,
		sse: document.getElementById("sse-text").textContent,
		try: document.getElementById("try-text").textContent})`))
	if err != nil {
		t.Fatal(err)
	}

	for _, panel := range []struct {
		name      string
		steps     []panelStep
		text      string
		want      string
		minSteps  int
		minSpread time.Duration
	}{
		// story.txt: 17 chunks of 5 characters, 100 ms apart
		{"fetch stream reader", log.Fetch, texts.Fetch, string(story), 10, 1200 * time.Millisecond},
		{"XHR onprogress", log.XHR, texts.XHR, string(story), 10, 1200 * time.Millisecond},
		// the controls' defaults: 3 words every 150 ms
		{"controls (3 words, 150ms)", log.Try, texts.Try, string(story), 5, 600 * time.Millisecond},
	} {
		checkSteps(t, panel.name, panel.steps, panel.minSteps, panel.minSpread)
		if panel.text != panel.want {
			t.Errorf("%s: the page shows %q, want %q", panel.name, panel.text, panel.want)
		}
		if strings.ContainsRune(panel.text, '\uFFFD') {
			t.Errorf("%s: mojibake in %q", panel.name, panel.text)
		}
	}

	// EventSource: every event, one at a time, 300 ms apart.
	wantData := sseData(t, "caddyfile-examples/demo/site/events.sse")
	if strings.Join(log.SSEData, "\n") != strings.Join(wantData, "\n") {
		t.Errorf("EventSource received %q, want %q", log.SSEData, wantData)
	}
	checkSteps(t, "EventSource", log.SSE, len(wantData), time.Duration(len(wantData)-1)*300*time.Millisecond-50*time.Millisecond)

	// The image completes at its real size, after its 7 chunks.
	img, _ := os.ReadFile("caddyfile-examples/demo/site/img/rings.png")
	real, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	chunks := (len(img) + 1023) / 1024
	if log.Image.Width != real.Width || log.Image.Height != real.Height {
		t.Errorf("image loaded at %d×%d, want %d×%d", log.Image.Width, log.Image.Height, real.Width, real.Height)
	}
	if min := float64(chunks-1)*100 - 5; log.Image.T < min {
		t.Errorf("image loaded after %.0f ms, want at least %.0f ms for %d chunks", log.Image.T, min, chunks)
	}
	t.Logf("image: %d×%d, %d chunks, loaded after %.0f ms", log.Image.Width, log.Image.Height, chunks, log.Image.T)

	// The controls: a chunk pace cannot parse shows pace's own message.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("try-chunk"), "5 furlongs"),
		chromedp.Click(chromedp.ID("try-run")))
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](`paceLog.tryDone === true`, chromedp.WithPollingTimeout(10*time.Second)))
	}
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("try-text")))
	class, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("try-text"), "class"))
	if !strings.Contains(shown, `chunk "5 furlongs": unknown unit "furlongs"`) || class.Value != "error" {
		t.Errorf("a bad chunk in the controls shows %q (class %q)", shown, class.Value)
	}
}

// waitForDemo polls the page's log until every panel is done.
func waitForDemo(t *testing.T, ctx context.Context) *demoLog {
	t.Helper()
	var log demoLog
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.paceLog)`))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &log); err != nil {
			t.Fatal(err)
		}
		if log.done() {
			return &log
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not finish in 30 s: %s", raw)
		}
	}
}

// checkSteps checks that a panel's text grew in at least minSteps distinct
// steps spread over at least minSpread, and logs them.
func checkSteps(t *testing.T, panel string, steps []panelStep, minSteps int, minSpread time.Duration) {
	t.Helper()
	distinct := 0
	for i, s := range steps {
		if i == 0 || s.Length > steps[i-1].Length {
			distinct++
		}
	}
	if len(steps) == 0 {
		t.Errorf("%s: no steps", panel)
		return
	}
	spread := time.Duration((steps[len(steps)-1].T - steps[0].T) * float64(time.Millisecond))
	t.Logf("%s: %d steps (%d distinct), first after %.0f ms, last after %.0f ms",
		panel, len(steps), distinct, steps[0].T, steps[len(steps)-1].T)
	if distinct < minSteps || spread < minSpread {
		t.Errorf("%s: %d distinct steps over %v, want at least %d over %v", panel, distinct, spread, minSteps, minSpread)
	}
}

// sseData is the data of each event in an SSE file, as EventSource
// dispatches it: the data lines of a block joined by "\n"; blocks without
// data (comments) dispatch nothing.
func sseData(t *testing.T, path string) []string {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, block := range strings.Split(strings.TrimSpace(string(src)), "\n\n") {
		var data []string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, v)
			}
		}
		if data != nil {
			events = append(events, strings.Join(data, "\n"))
		}
	}
	return events
}

// saveArtifact writes a file for people to look at after the tests, into
// $PACE_ARTIFACTS or artifacts/ at the repository root.
func saveArtifact(t *testing.T, name string, data []byte) {
	dir := os.Getenv("PACE_ARTIFACTS")
	if dir == "" {
		dir = "artifacts" // the tests run from the repository root here
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("artifact: %s (%d bytes)", abs, len(data))
}

// TestNosniffLetsXHRProgressPerChunk measures what the spec says of
// nosniff: in Chromium, a 250-byte text/plain body paced over 2 s fires XHR
// onprogress once, at the end, unless the response has nosniff or is
// application/octet-stream.
func TestNosniffLetsXHRProgressPerChunk(t *testing.T) {
	exec := chromium(t)
	body := strings.Repeat("0123456789", 25) // 250 bytes: 10 chunks of 25, 200 ms apart
	page := `<script>
window.counts = {};
for (const path of ["/sniffed.txt", "/nosniff.txt", "/octet.txt"]) {
	const xhr = new XMLHttpRequest();
	window.counts[path] = 0;
	xhr.onprogress = () => window.counts[path]++;
	xhr.onload = () => window.counts[path + " done"] = xhr.responseText.length;
	xhr.open("GET", path);
	xhr.send();
}
</script>`
	base := startCaddyfile(t, `ADDR {
		header /sniffed.txt {
			-X-Content-Type-Options
			defer
		}
		@text path /sniffed.txt /nosniff.txt
		pace @text 25 200ms {
			content_type keep
		}
		pace /octet.txt 25 200ms
		respond /page.html `+"`"+page+"`"+`
		header /page.html Content-Type text/html
		header /*.txt Content-Type text/plain
		respond /*.txt "`+body+`"
	}`)
	ctx := browser(t, exec, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/page.html")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`Object.keys(window.counts).length === 6`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatal(err)
	}
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](`window.counts`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("XHR onprogress events for 250 bytes in 10 chunks over 1.8 s: text/plain without nosniff %d, text/plain with nosniff %d, application/octet-stream %d",
		counts["/sniffed.txt"], counts["/nosniff.txt"], counts["/octet.txt"])
	for path, n := range counts {
		if strings.HasSuffix(path, " done") && n != 250 {
			t.Errorf("%s: %d bytes", path, n)
		}
	}
	if counts["/sniffed.txt"] > 2 || counts["/nosniff.txt"] < 8 || counts["/octet.txt"] < 8 {
		t.Errorf("onprogress counts %v: want about 1 without nosniff, about 10 with it or with octet-stream", counts)
	}
}
