package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A loadResult is what one cold load of a page in Chromium showed.
type loadResult struct {
	LoadMs      float64 `json:"load_ms"`                 // navigation start to the load event
	FirstByteMs float64 `json:"first_byte_ms,omitempty"` // navigation start to the page's first byte
	Protocol    string  `json:"protocol"`                // of the page: http/1.1 or h2
	Rules       int     `json:"rules"`                   // CSS rules in effect
	WantRules   int     `json:"want_rules"`
	Scripts     int     `json:"scripts"` // scripts that ran
	WantScripts int     `json:"want_scripts"`
	Images      int     `json:"images"` // images complete at their size
	WantImages  int     `json:"want_images"`
	Error       string  `json:"error,omitempty"`
	// With -timeline: when each resource started, connected, was asked
	// for, began and ended (ms from the navigation's start), to see where
	// two setups part.
	Timeline []timing `json:"timeline,omitempty"`
	// For a download: the bytes arrived by each whole second, and with
	// -series, by each read (ms from the request).
	BySecond []int64   `json:"by_second,omitempty"`
	Series   []arrived `json:"series,omitempty"`
}

// arrived is what a download had by a time, in ms from its request.
type arrived struct {
	Ms    float64 `json:"ms"`
	Bytes int64   `json:"bytes"`
}

type timing struct {
	Name                        string
	Start, Connected, Requested float64
	FirstByte, End              float64
}

// whole reports whether the page was whole: every rule, script and image.
func (r loadResult) whole() bool {
	return r.Error == "" && r.Rules == r.WantRules && r.Scripts == r.WantScripts && r.Images == r.WantImages
}

// throttle is Chrome DevTools' throttling: CDP's network conditions.
type throttle struct {
	latency    time.Duration
	down, up   float64 // bytes per second
	configured bool
}

// runLoad is `realism load`, run in the client's namespace: one cold load of
// a page in a fresh headless Chromium, printed as JSON.
func runLoad(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "the page")
	chromium := fs.String("chromium", "chromium", "the browser")
	latency := fs.Duration("latency", 0, "Chrome's throttling: latency")
	down := fs.Float64("down", 0, "Chrome's throttling: download throughput, bytes per second")
	up := fs.Float64("up", 0, "Chrome's throttling: upload throughput, bytes per second")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after")
	timeline := fs.Bool("timeline", false, "keep every resource's timing")
	quic := fs.String("quic", "", "force QUIC (HTTP/3) for this origin, host:port, trusting its certificate's key")
	fs.Parse(args)
	th := throttle{*latency, *down, *up, *down > 0 || *latency > 0}
	r := loadPage(*chromium, *url, th, *timeout, *timeline, *quic)
	json.NewEncoder(os.Stdout).Encode(r)
}

// loadPage loads url once in a fresh Chromium; with quic (host:port), over
// HTTP/3 from its first request, which Chromium's QUIC allows for a
// self-signed certificate only when its key is named.
func loadPage(chromium, url string, th throttle, timeout time.Duration, timeline bool, quic string) loadResult {
	dir, err := os.MkdirTemp("", "realism-profile-")
	if err != nil {
		return loadResult{Error: err.Error()}
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(dir),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 1000))
	if quic == "" {
		opts = append(opts, chromedp.Flag("disable-quic", true))
	} else {
		spki, err := keyHash(quic)
		if err != nil {
			return loadResult{Error: err.Error()}
		}
		opts = append(opts, chromedp.Flag("enable-quic", true), chromedp.Flag("origin-to-force-quic-on", quic),
			chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // start the browser
		return loadResult{Error: err.Error()}
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	if th.configured {
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{
					Latency:            float64(th.latency) / float64(time.Millisecond),
					DownloadThroughput: th.down,
					UploadThroughput:   th.up,
				}},
			})
			return err
		}))
		if err != nil {
			return loadResult{Error: "throttling: " + err.Error()}
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return loadResult{Error: err.Error()}
	}
	r, err := chromedp.Run(ctx, chromedp.Evaluate[loadResult](`(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		let rules = 0;
		for (const sheet of document.styleSheets) rules += sheet.cssRules.length;
		const imgs = [...document.images];
		return {
			load_ms: nav.loadEventStart,
			first_byte_ms: nav.responseStart,
			protocol: nav.nextHopProtocol,
			rules,
			want_rules: +document.body.dataset.rules,
			scripts: window.__ran || 0,
			want_scripts: +document.body.dataset.scripts,
			images: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
			want_images: imgs.length,
		};
	})()`))
	if err != nil {
		return loadResult{Error: fmt.Sprintf("reading the page: %v", err)}
	}
	if timeline {
		r.Timeline, err = chromedp.Run(ctx, chromedp.Evaluate[[]timing](`[
			...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource"),
		].map(e => ({
			Name: e.name.replace(/^.*\//, ""), Start: e.startTime, Connected: e.connectEnd,
			Requested: e.requestStart, FirstByte: e.responseStart, End: e.responseEnd,
		}))`))
		if err != nil {
			r.Error = fmt.Sprintf("reading the timeline: %v", err)
		}
	}
	return r
}

// keyHash is the base64 SHA-256 of the public key of the certificate that
// addr (host:port) serves: what Chromium's
// --ignore-certificate-errors-spki-list takes.
func keyHash(addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return "", fmt.Errorf("reading %s's certificate: %v", addr, err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
