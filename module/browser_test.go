package pace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	cdpnetwork "github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/image/font/gofont/goregular"
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

// runDemo runs the demo's Caddyfile, from the repository root, on a free
// loopback port, and returns its base URL.
func runDemo(t *testing.T) string {
	return runDemoWithAdmin(t, "")
}

// runDemoWithAdmin is runDemo with the admin endpoint at admin (off if
// empty), in place of the demo's localhost:2019.
func runDemoWithAdmin(t *testing.T, admin string) string {
	t.Chdir("..")
	src, err := os.ReadFile("caddyfile-examples/demo/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	return runExampleWithAdmin(t, cfg, admin)
}

func TestTheDemosLiveNetworkSwitches(t *testing.T) {
	exec := chromium(t)
	admin := freeAddr(t)
	base := runDemoWithAdmin(t, admin)
	ctx := browser(t, exec, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	type live struct {
		Loads   []float64 // ms each
		Waiting bool
		Text    string
	}
	read := func() live {
		l, err := chromedp.Run(ctx, chromedp.Evaluate[live](
			`({loads: paceLog.live || [], waiting: !!paceLog.liveWaiting, text: document.getElementById("live-text").textContent})`))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	patch := func(body string) {
		code, answer := callURL(t, http.DefaultClient, http.MethodPatch, "http://"+admin+"/pace/networks/demo", body)
		if code != http.StatusOK {
			t.Fatalf("PATCH %s: %d %s", body, code, answer)
		}
	}
	mean := func(ms []float64) float64 {
		sum := 0.0
		for _, m := range ms {
			sum += m
		}
		return sum / float64(len(ms))
	}
	time.Sleep(3 * time.Second)
	slow := read()
	patch(`{"preset": "offline"}`)
	time.Sleep(3500 * time.Millisecond)
	off := read()
	patch(`{"preset": "fast-4g"}`)
	time.Sleep(3 * time.Second)
	fast := read()
	if len(slow.Loads) < 3 || len(fast.Loads) < len(off.Loads)+3 {
		t.Fatalf("loads: %d under slow-4g, %d by the end of offline, %d by the end of fast-4g", len(slow.Loads), len(off.Loads), len(fast.Loads))
	}
	slowMean, fastMean := mean(slow.Loads[1:]), mean(fast.Loads[len(off.Loads)+1:])
	t.Logf("the page's image loads: %.0f ms under slow-4g; offline: %d more done, shows %q; %.0f ms under fast-4g, shows %q",
		slowMean, len(off.Loads)-len(slow.Loads), off.Text, fastMean, fast.Text)
	if len(off.Loads) > len(slow.Loads)+1 || !off.Waiting || !strings.Contains(off.Text, "carries nothing") {
		t.Errorf("offline, the page did %d more loads and shows %q, want at most the one in flight, and waiting", len(off.Loads)-len(slow.Loads), off.Text)
	}
	if fastMean > slowMean/2 || fast.Waiting {
		t.Errorf("under fast-4g a load took %.0f ms, under slow-4g %.0f: want under half", fastMean, slowMean)
	}
}

func TestDemoStreamsInARealBrowser(t *testing.T) {
	exec := chromium(t)
	base := runDemo(t)
	page := strings.Replace(base, "127.0.0.1", "localhost", 1) + "/" // as the README opens it

	ctx := browser(t, exec, 90*time.Second)
	missing := notFound(t, ctx)

	// Mid-stream (the load event waits for the image, 6.4 s), a screenshot
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

	// The image completes at its real size, after its 17 chunks.
	img, _ := os.ReadFile("caddyfile-examples/demo/site/img/rings.png")
	real, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	chunks := (len(img) + 1023) / 1024
	if log.Image.Width != real.Width || log.Image.Height != real.Height {
		t.Errorf("image loaded at %d×%d, want %d×%d", log.Image.Width, log.Image.Height, real.Width, real.Height)
	}
	if min := float64(chunks-1)*400 - 5; log.Image.T < min {
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
	// Nothing the page asks for is missing (a favicon, say): a 404 is an
	// error in the console of every test that loads the demo.
	if urls := missing(); len(urls) > 0 {
		t.Errorf("the demo's page asked for what it does not have: %v", urls)
	}
}

// notFound records the URLs the tab of ctx got 404 for, and returns a
// function that lists them.
func notFound(t *testing.T, ctx context.Context) func() []string {
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*cdpnetwork.EventResponseReceived); ok && r.Response.Status == http.StatusNotFound {
			mu.Lock()
			urls = append(urls, r.Response.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(urls)
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

// TestAPageBehindPaceIsWhole loads a page whose stylesheet, script, font and
// image come through pace, as a site behind `pace slow-4g` does, and checks
// that Chromium uses every one of them: content_type auto must not rewrite a
// stylesheet or a script (Chromium refuses both as application/octet-stream
// under nosniff). A fetch reader and an XHR on the same page still see a
// text body grow chunk by chunk.
func TestAPageBehindPaceIsWhole(t *testing.T) {
	exec := chromium(t)
	root := t.TempDir()
	story := strings.Repeat("A paced story, read as it arrives. ", 1700) // 59,500 bytes
	files := map[string][]byte{
		"index.html": []byte(`<!doctype html>
<link rel="stylesheet" href="style.css">
<script src="app.js"></script>
<p id="styled">styled</p>
<p id="fonted">fonted</p>
<img id="img" src="pic.png">
<script>
window.result = {fetchSteps: [], xhrSteps: []};
(async () => {
	const reader = (await fetch("story.txt?by=fetch")).body.getReader();
	const decoder = new TextDecoder();
	let text = "";
	for (;;) {
		const {done, value} = await reader.read();
		if (done) break;
		text += decoder.decode(value, {stream: true});
		result.fetchSteps.push(text.length);
	}
	result.fetchText = text;
})();
const xhr = new XMLHttpRequest();
xhr.onprogress = () => result.xhrSteps.push(xhr.responseText.length);
xhr.onload = () => result.xhrText = xhr.responseText;
xhr.open("GET", "story.txt?by=xhr"); // not the URL fetch reads: the HTTP cache would serve one from the other
xhr.send();
addEventListener("load", async () => {
	await Promise.race([document.fonts.ready, new Promise(done => setTimeout(done, 10000))]);
	const sheet = [...document.styleSheets].find(s => s.href && s.href.endsWith("style.css"));
	const img = document.getElementById("img");
	result.rules = sheet ? sheet.cssRules.length : -1;
	result.color = getComputedStyle(document.getElementById("styled")).color;
	result.font = [...document.fonts].filter(f => f.family === "PaceFont" && f.status === "loaded").length;
	result.fontUsed = document.fonts.check("16px PaceFont");
	result.image = img.complete ? img.naturalWidth : 0;
	result.loaded = true;
});
</script>`),
		"style.css": []byte(`@font-face { font-family: PaceFont; src: url(font.ttf) format("truetype"); }
#styled { color: rgb(1, 2, 3); }
#fonted { font-family: PaceFont, monospace; }
`),
		"app.js":    []byte(`window.appRan = true;`),
		"font.ttf":  goregular.TTF,
		"story.txt": []byte(story),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noisePNG(t, filepath.Join(root, "pic.png"), 40)

	type result struct {
		Rules, Font, Image int
		Color              string
		FontUsed, Loaded   bool
		AppRan             bool
		FetchSteps         []int
		XHRSteps           []int
		FetchText, XHRText string
	}
	for _, pace := range []string{"slow-4g", "1KiB 50ms"} {
		t.Run("pace "+pace, func(t *testing.T) {
			base := startCaddyfile(t, "ADDR {\n\troot * "+root+"\n\tpace "+pace+"\n\tfile_server\n}")
			ctx := browser(t, exec, 90*time.Second)
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/index.html")); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.result && result.loaded && result.xhrText !== undefined && result.fetchText !== undefined`,
				chromedp.WithPollingTimeout(60*time.Second))); err != nil {
				partial, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({...window.result, fetchText: undefined, xhrText: undefined, appRan: window.appRan})`))
				t.Fatalf("the page did not finish: %v; it had %s", err, partial)
			}
			r, err := chromedp.Run(ctx, chromedp.Evaluate[result](`({...result, appRan: window.appRan === true})`))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("rules %d, color %s, script ran %v, font loaded %d (used %v), image %d px wide; fetch saw %d steps, XHR %d",
				r.Rules, r.Color, r.AppRan, r.Font, r.FontUsed, r.Image, len(r.FetchSteps), len(r.XHRSteps))
			if r.Rules != 3 || r.Color != "rgb(1, 2, 3)" {
				t.Errorf("the stylesheet was not applied: %d rules, color %q", r.Rules, r.Color)
			}
			if !r.AppRan {
				t.Error("the external script did not run")
			}
			if r.Font != 1 || !r.FontUsed {
				t.Errorf("the web font was not used: %d loaded, check %v", r.Font, r.FontUsed)
			}
			if r.Image != 40 {
				t.Errorf("the image is %d px wide, want 40", r.Image)
			}
			if r.FetchText != story || r.XHRText != story {
				t.Errorf("the readers got %d and %d bytes, want %d", len(r.FetchText), len(r.XHRText), len(story))
			}
			if distinct(r.FetchSteps) < 3 || distinct(r.XHRSteps) < 3 {
				t.Errorf("the text grew in %d steps for fetch and %d for XHR; want it to grow chunk by chunk",
					distinct(r.FetchSteps), distinct(r.XHRSteps))
			}
		})
	}
}

// distinct counts the growths in a list of lengths.
func distinct(lengths []int) int {
	n := 0
	for i, l := range lengths {
		if i == 0 || l > lengths[i-1] {
			n++
		}
	}
	return n
}

// TestDemoImageGrowsInSteps watches the demo's image arrive, in screenshots:
// Chromium repaints an image that is still arriving about once a second, so
// at the demo's 1 KiB every 400 ms it grows by some 25 rows a second (at
// 1 KiB every 100 ms it showed 4 rows, then 115, then all 160).
func TestDemoImageGrowsInSteps(t *testing.T) {
	exec := chromium(t)
	base := runDemo(t)
	ctx := browser(t, exec, 90*time.Second)
	// Navigate waits for the load event, and so for the image; "Load again"
	// loads it afresh.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.Click(chromedp.ID("again"))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var steps []string
	last := -1
	for last < 160 && time.Since(start) < 20*time.Second {
		shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("image")))
		if err != nil {
			t.Fatal(err)
		}
		if rows := paintedRows(t, shot); rows != last {
			steps = append(steps, fmt.Sprintf("%d rows at %v", rows, time.Since(start).Round(10*time.Millisecond)))
			last = rows
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the image grew: %s", strings.Join(steps, ", "))
	if last != 160 || len(steps) < 5 {
		t.Errorf("the image showed %d steps (%s); want it to grow in at least 4 partial steps to all 160 rows", len(steps), strings.Join(steps, ", "))
	}
}

// paintedRows is how many rows from the top of a screenshot of the demo's
// image are painted: the rings fill every row they reach, where the image
// not yet arrived is blank.
func paintedRows(t *testing.T, shot []byte) int {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	rows := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		colored := 0
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xe000 || g < 0xe000 || bl < 0xe000 {
				colored++
			}
		}
		if colored > b.Dx()*8/10 {
			rows = y - b.Min.Y + 1
		}
	}
	return rows
}
