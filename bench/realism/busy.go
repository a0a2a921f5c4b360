package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// A busy link: one client downloads 2 MB, starts loading the typical page
// 1.5 s into it in Chromium, and sends a tiny request on a new connection
// every 0.5 s until both are done; or it uploads 1 MB with tiny requests
// beside it. Through the packet-level link with a queue of so many packets
// each way, and through pace with the same queue.

// busyResult is what one busy run showed.
type busyResult struct {
	DownloadMs float64     `json:"download_ms,omitempty"`
	BySecond   []int64     `json:"by_second,omitempty"` // the download's bytes by each second
	UploadMs   float64     `json:"upload_ms,omitempty"`
	Page       *loadResult `json:"page,omitempty"`
	TinyMs     []float64   `json:"tiny_ms"` // each tiny request, from sending it to its last byte
	Error      string      `json:"error,omitempty"`
}

// The busy runs' servers, on loopback (pace, one per queue) and behind the
// link, and the upload sink behind each.
const (
	busyLinkPort = 8441 // the link's HTTPS server, HTTP/1.1
	sinkPort     = 8499
)

// busyPort is where pace with a queue of packets serves the busy runs,
// over HTTP/1.1 (a port's last digit is its protocols').
func busyPort(packets int) int { return 12001 + 10*packets }

// runBusy is `realism busy`, run in the client's namespace: one busy run,
// printed as JSON.
func runBusy(args []string) {
	fs := flag.NewFlagSet("busy", flag.ExitOnError)
	base := fs.String("base", "", "the server: https://host:port")
	chromium := fs.String("chromium", "chromium", "the browser")
	upload := fs.Bool("upload", false, "upload 1 MB instead of the download and the page")
	fs.Parse(args)
	json.NewEncoder(os.Stdout).Encode(busy(*base, *chromium, *upload))
}

// busy runs the busy link's case against the server at base.
func busy(base, chromium string, upload bool) busyResult {
	var r busyResult
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	}
	insecure := &tls.Config{InsecureSkipVerify: true}
	start := time.Now()
	done := make(chan struct{})
	var work sync.WaitGroup
	if upload {
		work.Go(func() {
			client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: insecure}}
			resp, err := client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(make([]byte, 1_000_000)))
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "1000000" {
					err = fmt.Errorf("the sink got %q bytes of 1000000", body)
				}
			}
			fail(err)
			r.UploadMs = millis(time.Since(start))
		})
	} else {
		work.Go(func() {
			client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: insecure, DisableCompression: true}}
			n, err := getCounting(client, base+"/img/big.png", start, &r.BySecond)
			if err == nil && n != 2_000_000 {
				err = fmt.Errorf("the download got %d bytes of 2000000", n)
			}
			fail(err)
			r.DownloadMs = millis(time.Since(start))
		})
		work.Go(func() {
			time.Sleep(1500 * time.Millisecond)
			page := loadPage(chromium, base+"/typical.html", throttle{}, 3*time.Minute, true, "")
			r.Page = &page
		})
	}
	go func() { work.Wait(); close(done) }()

	var tiny sync.WaitGroup
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			tiny.Go(func() {
				client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: insecure, DisableKeepAlives: true}}
				sent := time.Now()
				n, err := get(client, base+"/tiny.txt")
				if err == nil && n != int64(len(tinyText)) {
					err = fmt.Errorf("a tiny request got %d bytes", n)
				}
				fail(err)
				mu.Lock()
				r.TinyMs = append(r.TinyMs, millis(time.Since(sent)))
				mu.Unlock()
			})
		}
	}
	tiny.Wait()
	return r
}

// get reads url's body with client and returns its size.
func get(client *http.Client, url string) (int64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

// getCounting is get, noting the bytes read by each whole second from
// start.
func getCounting(client *http.Client, url string, start time.Time, bySecond *[]int64) (int64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := resp.Body.Read(buf)
		for len(*bySecond) < int(time.Since(start)/time.Second) {
			*bySecond = append(*bySecond, n)
		}
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tinyText is the tiny request's answer.
const tinyText = "a tiny answer, as an API's or a beacon's\n"

// runSink is `realism sink`: it reads every request's body and answers its
// size, for the uploads.
func runSink(args []string) {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", fmt.Sprintf("127.0.0.1:%d", sinkPort), "where")
	fs.Parse(args)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
}

// percentile is the p-th percentile of values (0 for none), by nearest
// rank.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	sort.Float64s(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// printBusyTables prints the busy runs' medians, through the link and
// through pace, per queue.
func printBusyTables(w io.Writer, all []result) {
	type cell struct {
		page, setup string
		queue       int
	}
	runs := map[cell][]busyResult{}
	var queues []int
	for _, r := range all {
		if r.Busy == nil {
			continue
		}
		c := cell{r.Page, r.Setup, r.Queue}
		runs[c] = append(runs[c], *r.Busy)
		if !slices.Contains(queues, r.Queue) {
			queues = append(queues, r.Queue)
		}
	}
	if len(runs) == 0 {
		return
	}
	type row struct {
		name string
		of   func([]busyResult) float64
	}
	medianOf := func(f func(busyResult) float64) func([]busyResult) float64 {
		return func(rs []busyResult) float64 {
			var v []float64
			for _, r := range rs {
				if x := f(r); x > 0 {
					v = append(v, x)
				}
			}
			return median(v)
		}
	}
	tiny := func(p float64) func([]busyResult) float64 {
		return func(rs []busyResult) float64 {
			var v []float64
			for _, r := range rs {
				v = append(v, r.TinyMs...)
			}
			return percentile(v, p)
		}
	}
	for _, page := range []string{"busy", "upload"} {
		rows := []row{
			{"the page's load event", medianOf(func(r busyResult) float64 {
				if r.Page == nil {
					return 0
				}
				return r.Page.LoadMs
			})},
			{"the download", medianOf(func(r busyResult) float64 { return r.DownloadMs })},
		}
		title := "A 2 MB download, the typical page 1.5 s into it, a tiny request on a new connection every 0.5 s"
		if page == "upload" {
			rows = []row{{"the upload", medianOf(func(r busyResult) float64 { return r.UploadMs })}}
			title = "A 1 MB upload, a tiny request on a new connection every 0.5 s"
		}
		rows = append(rows, row{"the tiny requests, median", tiny(50)}, row{"the tiny requests, 90th percentile", tiny(90)})
		for _, q := range queues {
			link, pace := runs[cell{page, setupLink, q}], runs[cell{page, setupPace, q}]
			if len(link) == 0 && len(pace) == 0 {
				continue
			}
			fmt.Fprintf(w, "\n%s; slow-4g, queues of %d packets each way, medians of %d and %d runs (the tiny requests pooled over the runs):\n\n", title, q, len(link), len(pace))
			fmt.Fprintln(w, "| | packet-level link | `pace` | pace / link |")
			fmt.Fprintln(w, "|---|---|---|---|")
			for _, rw := range rows {
				l, p := rw.of(link), rw.of(pace)
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", rw.name, secs(l), secs(p), ratio(p, l))
			}
		}
	}
}

// describeBusy says what a busy run showed, for the log.
func describeBusy(r *busyResult) string {
	var parts []string
	if r.Page != nil {
		parts = append(parts, fmt.Sprintf("page %.0f ms (whole %v)", r.Page.LoadMs, r.Page.whole()))
	}
	if r.DownloadMs > 0 {
		parts = append(parts, fmt.Sprintf("download %.0f ms", r.DownloadMs))
	}
	if r.UploadMs > 0 {
		parts = append(parts, fmt.Sprintf("upload %.0f ms", r.UploadMs))
	}
	parts = append(parts, fmt.Sprintf("%d tiny requests, median %.0f ms, worst %.0f ms", len(r.TinyMs), percentile(r.TinyMs, 50), percentile(r.TinyMs, 100)))
	if r.Error != "" {
		parts = append(parts, "error: "+r.Error)
	}
	return strings.Join(parts, ", ")
}
