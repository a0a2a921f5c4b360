// Command realism measures how faithful pace's networks are: it loads pages
// in headless Chromium through a packet-level link of a preset's round trip
// and rates, through `pace <preset>`, through Chrome DevTools' own throttling
// and through `pace` with `model devtools`, and compares their load times.
//
// Run it as root on Linux, from the repository root:
//
//	go run ./bench/realism                 # the whole run (about an hour)
//	go run ./bench/realism -smoke          # one load of one page per setup
//	go run ./bench/realism -pages small -presets slow-4g -protos h2 -runs 3
//	go run ./bench/realism tables bench/results/realism-*.jsonl   # the tables of kept results
//
// The packet-level link joins two network namespaces that it makes
// (pace-realism-c and pace-realism-s) through TUN devices and a userspace
// delay line (see delayline.go): the kernels here have no sch_netem. Every
// address is inside them or on their loopback; nothing leaves the machine.
// It needs Debian's chromium, iproute2 and Go.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "load":
			runLoad(os.Args[2:])
			return
		case "probe":
			runProbe(os.Args[2:])
			return
		case "fetch":
			runFetch(os.Args[2:])
			return
		case "busy":
			runBusy(os.Args[2:])
			return
		case "sink":
			runSink(os.Args[2:])
			return
		case "tables":
			if err := runTables(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "realism tables:", err)
				os.Exit(1)
			}
			return
		}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "realism:", err)
		os.Exit(1)
	}
}

// A preset's two sets of numbers: the link behind it, and what Chrome
// DevTools applies for it.
type preset struct {
	name     string
	rtt      time.Duration
	down, up float64 // link, bytes per second
	latency  time.Duration
	dtDown   float64 // DevTools, bytes per second
	dtUp     float64
}

var presets = []preset{
	{"slow-4g", 150 * time.Millisecond, 1.6e6 / 8, 750e3 / 8, 562500 * time.Microsecond, 180000, 84375},
	{"3g", 400 * time.Millisecond, 500e3 / 8, 500e3 / 8, 2 * time.Second, 50000, 50000},
	{"fast-4g", 60 * time.Millisecond, 9e6 / 8, 1.5e6 / 8, 165 * time.Millisecond, 1012500, 168750},
}

// The setups a page is loaded through.
const (
	setupLink     = "link"     // the packet-level link, plain Caddy behind it
	setupPace     = "pace"     // pace <preset>, on loopback
	setupChrome   = "chrome"   // plain Caddy on loopback, Chrome DevTools' throttling
	setupDevTools = "devtools" // pace with model devtools, on loopback
)

// A result is one load, as the results file keeps it.
type result struct {
	Preset string  `json:"preset"`
	Trace  string  `json:"trace,omitempty"` // which of benchTraces, for a download over one
	Proto  string  `json:"proto"`
	Page   string  `json:"page"`
	Setup  string  `json:"setup"`
	CC     string  `json:"cc"`              // the link's congestion control
	Loss   float64 `json:"loss,omitempty"`  // percent of packets lost each way
	Queue  int     `json:"queue,omitempty"` // packets each way, for a busy run
	Run    int     `json:"run"`
	loadResult
	Busy *busyResult `json:"busy,omitempty"` // a busy run's figures
}

func run() error {
	pageNames := flag.String("pages", "typical,small,download", "pages to load")
	presetNames := flag.String("presets", "slow-4g,3g", "presets: slow-4g, 3g, fast-4g")
	protos := flag.String("protos", "h1,h2", "protocols, over TLS: h1, h2, h3 (HTTP/3, through the link and pace only)")
	setups := flag.String("setups", "link,pace,chrome,devtools", "setups")
	ccs := flag.String("cc", "cubic,bbr", "congestion controls of the packet-level link")
	runs := flag.Int("runs", 3, "loads of each page in each setup")
	out := flag.String("out", "bench/results/realism-last-run.jsonl", "where to keep every load's result")
	timeline := flag.Bool("timeline", false, "keep every resource's timing in the results")
	packets := flag.String("packets", "", "a folder to write every packet of the packet-level link's loads into, a CSV each")
	losses := flag.String("loss", "0", "percentages of packets lost each way, for the packet-level link and pace (not Chrome's throttling, which loses none)")
	downloads := flag.Int("downloads", 0, "and this many downloads of 1 MiB over a 100 ms, 8 Mbit/s link losing -download-loss, through the link and through pace")
	downloadLoss := flag.Float64("download-loss", 2, "percent of packets lost each way for -downloads")
	traceDownload := flag.Bool("trace-download", false, "and download 4 MB five times through pace and through the packet-level link over each of two traces (one switching between 2 and 20 Mbit/s every 3 s, one like a cellular link's), against the trace's capacity at every second")
	busyRuns := flag.Int("busy", 0, "and this many busy runs of each kind through the link and through pace, at slow-4g with cubic: a 2 MB download with the typical page 1.5 s into it and a tiny request every 0.5 s, and a 1 MB upload with tiny requests")
	queues := flag.String("queues", "1000,100", "the busy runs' queues, in packets each way")
	smoke := flag.Bool("smoke", false, "one load of the small page over HTTP/2 at slow-4g in each setup, with cubic, and one busy run of each kind with a queue of 100 packets")
	flag.Parse()
	if *smoke {
		*pageNames, *presetNames, *protos, *ccs, *runs, *busyRuns, *queues = "small", "slow-4g", "h2", "cubic", 1, 1, "100"
	}
	var queueList []int
	for _, q := range strings.Split(*queues, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(q))
		if err != nil || n < 1 {
			return fmt.Errorf("-queues %q: want counts of packets", *queues)
		}
		queueList = append(queueList, n)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root, for its network namespaces and TUN devices")
	}
	chromium, err := findChromium()
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "realism-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	site := filepath.Join(work, "site")
	if err := writeSite(site); err != nil {
		return err
	}
	say("building caddy-pace")
	bin := filepath.Join(work, "caddy-pace")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/caddy-pace").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	n, err := newNamespaces()
	if err != nil {
		return err
	}
	defer n.close()

	chosen := selectPresets(*presetNames)
	var lossList []float64
	for _, l := range strings.Split(*losses, ",") {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(l), "%"), 64)
		if err != nil || v < 0 || v >= 100 {
			return fmt.Errorf("-loss %q: want percentages from 0 to 100", *losses)
		}
		lossList = append(lossList, v)
	}
	if err := n.startServers(bin, site, work, chosen, lossList, *downloadLoss, queueList); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	results, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer results.Close()
	var all []result
	record := func(r result) {
		all = append(all, r)
		line, _ := json.Marshal(r)
		results.Write(append(line, '\n'))
	}

	for _, cc := range strings.Split(*ccs, ",") {
		if err := n.setCongestionControl(cc); err != nil {
			return err
		}
		for li, loss := range lossList {
			for _, p := range chosen {
				n.line.set(p.rtt, p.down, p.up, 1000, loss/100)
				for _, proto := range strings.Split(*protos, ",") {
					for _, pg := range strings.Split(*pageNames, ",") {
						if pg == "" {
							continue
						}
						for run := 1; run <= *runs; run++ {
							for _, setup := range strings.Split(*setups, ",") {
								if cc != "cubic" && setup != setupLink || (loss > 0 || proto == "h3") && setup != setupLink && setup != setupPace {
									continue // only the packet-level link has a congestion control to vary; Chrome's throttling loses nothing, and HTTP/3 is measured through the link and pace
								}
								url, th := n.target(setup, p, proto, pg, li)
								r := result{Preset: p.name, Proto: proto, Page: pg, Setup: setup, CC: cc, Loss: loss, Run: run}
								if *packets != "" && setup == setupLink {
									n.line.startLog()
								}
								r.loadResult = n.load(self, chromium, url, th, *timeline)
								if *packets != "" && setup == setupLink {
									os.MkdirAll(*packets, 0o755)
									name := fmt.Sprintf("%s-%s-%s-%s-%g-%d.csv", p.name, proto, pg, cc, loss, run)
									if err := n.line.writeLog(filepath.Join(*packets, name)); err != nil {
										return err
									}
								}
								say("%s %s %s %-8s %s loss %g%% run %d: %.0f ms, %s, whole %v %s", p.name, proto, pg, setup, cc, loss, run, r.LoadMs, r.Protocol, r.whole(), r.Error)
								record(r)
							}
						}
					}
				}
			}
		}
		if *busyRuns > 0 && cc == "cubic" {
			slow4G := presets[0]
			for _, q := range queueList {
				n.line.set(slow4G.rtt, slow4G.down, slow4G.up, q, 0)
				for run := 1; run <= *busyRuns; run++ {
					for _, kind := range []string{"busy", "upload"} {
						for _, setup := range []string{setupLink, setupPace} {
							base := fmt.Sprintf("https://127.0.0.1:%d", busyPort(q))
							if setup == setupLink {
								base = fmt.Sprintf("https://%s:%d", serverAddr, busyLinkPort)
							}
							r := result{Preset: slow4G.name, Proto: "h1", Page: kind, Setup: setup, Queue: q, Run: run}
							if *packets != "" && setup == setupLink {
								n.line.startLog()
							}
							r.Busy = n.busy(self, chromium, base, kind == "upload")
							if *packets != "" && setup == setupLink {
								os.MkdirAll(*packets, 0o755)
								if err := n.line.writeLog(filepath.Join(*packets, fmt.Sprintf("%s-%d-%d.csv", kind, q, run))); err != nil {
									return err
								}
							}
							say("%s %-4s queue %d run %d: %s", kind, setup, q, run, describeBusy(r.Busy))
							record(r)
						}
					}
				}
			}
		}
		if *downloads > 0 {
			n.line.set(100*time.Millisecond, 1e6, 1e6, 1000, *downloadLoss/100)
			for run := 1; run <= *downloads; run++ {
				for _, setup := range []string{setupLink, setupPace} {
					r := result{Preset: "100ms-8Mbit", Proto: "h1", Page: "1MiB", Setup: setup, CC: cc, Loss: *downloadLoss, Run: run}
					r.loadResult = n.fetch(self, n.downloadURL(setup), 1<<20)
					say("1 MiB %-4s %s loss %g%% run %d: %.0f ms %s", setup, cc, *downloadLoss, run, r.LoadMs, r.Error)
					record(r)
				}
			}
		}
	}
	if *traceDownload {
		var runs []result
		for _, bt := range benchTraces {
			tr, err := pacing.ParseTrace(strings.NewReader(bt.text()))
			if err != nil {
				return err
			}
			for run := 1; run <= traceRuns; run++ {
				for _, setup := range []string{setupLink, setupPace} {
					url := fmt.Sprintf("http://127.0.0.1:%d/fourmb.bin", bt.port)
					if setup == setupLink {
						n.line.set(traceRTT, 0, 0, 1000, 0)
						n.line.traceDown(tr)
						url = fmt.Sprintf("http://%s:%d/fourmb.bin", serverAddr, downloadLinkPort)
					}
					r := result{Preset: "trace", Trace: bt.name, Proto: "h1", Page: "4MB", Setup: setup, Run: run}
					r.loadResult = n.fetch(self, url, 4_000_000, "-series")
					say("4 MB over the trace %s %-4s run %d: %.0f ms %s", bt.name, setup, run, r.LoadMs, r.Error)
					record(r)
					runs = append(runs, r)
				}
			}
		}
		if err := printTraceTables(os.Stdout, runs); err != nil {
			return err
		}
	}
	printTables(os.Stdout, all)
	printBusyTables(os.Stdout, all)
	say("every load's result is in %s", *out)
	for _, r := range all {
		if r.Busy != nil {
			if r.Busy.Error != "" || r.Busy.Page != nil && !r.Busy.Page.whole() {
				return fmt.Errorf("a busy run failed: %+v", r.Busy)
			}
			continue
		}
		if !r.whole() {
			return fmt.Errorf("a page was not whole: %+v", r)
		}
	}
	return nil
}

func selectPresets(names string) []preset {
	var chosen []preset
	for _, name := range strings.Split(names, ",") {
		for _, p := range presets {
			if p.name == name {
				chosen = append(chosen, p)
			}
		}
	}
	return chosen
}

func findChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no Chromium (apt-get install chromium)")
}

var began = time.Now()

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "== %4.0fs "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
}

// printTables prints, for every congestion control, page, protocol and
// preset, the median load time of each setup and the ratios that say how
// faithful each is.
func printTables(w io.Writer, all []result) {
	type cell struct {
		preset, proto, page, setup, cc string
		loss                           float64
	}
	medians := map[cell]float64{}
	var loads = map[cell][]float64{}
	for _, r := range all {
		if r.CC == "" || r.Busy != nil {
			continue // not a load through a preset (the trace download, a busy run)
		}
		c := cell{r.Preset, r.Proto, r.Page, r.Setup, r.CC, r.Loss}
		loads[c] = append(loads[c], r.LoadMs)
	}
	for c, ms := range loads {
		medians[c] = median(ms)
	}
	ccs := slices.DeleteFunc(uniq(all, func(r result) string { return r.CC }), func(cc string) bool { return cc == "" })
	losses := uniq(all, func(r result) string { return strconv.FormatFloat(r.Loss, 'g', -1, 64) })
	for _, cc := range ccs {
		fmt.Fprintf(w, "\nLoad-event time (for 1MiB, the download's time), median of each cell; the packet-level link with %s:\n\n", cc)
		fmt.Fprintln(w, "| page | protocol | preset | loss | packet-level link | `pace <preset>` | Chrome's throttling | `pace`, `model devtools` | pace / link | Chrome / link | devtools / Chrome |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, lossText := range losses {
			loss, _ := strconv.ParseFloat(lossText, 64)
			for _, page := range uniq(all, func(r result) string { return r.Page }) {
				for _, proto := range uniq(all, func(r result) string { return r.Proto }) {
					for _, p := range uniq(all, func(r result) string { return r.Preset }) {
						get := func(setup string) float64 {
							if setup != setupLink {
								return medians[cell{p, proto, page, setup, "cubic", loss}]
							}
							return medians[cell{p, proto, page, setup, cc, loss}]
						}
						link, pace, chrome, dt := get(setupLink), get(setupPace), get(setupChrome), get(setupDevTools)
						if link == 0 && pace == 0 && chrome == 0 && dt == 0 {
							continue
						}
						fmt.Fprintf(w, "| %s | %s | %s | %s%% | %s | %s | %s | %s | %s | %s | %s |\n", page, proto, p, lossText,
							secs(link), secs(pace), secs(chrome), secs(dt), ratio(pace, link), ratio(chrome, link), ratio(dt, chrome))
					}
				}
			}
		}
	}
}

// runTables prints the tables of results kept in files, so that runs made
// apart (one interrupted and finished later, or one per congestion control)
// are read as one.
func runTables(files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("name the results files to read")
	}
	var all []result
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for line := 1; sc.Scan(); line++ {
			var r result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return fmt.Errorf("%s:%d: %v", name, line, err)
			}
			all = append(all, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	var overTraces []result
	for _, r := range all {
		if r.Preset == "trace" {
			overTraces = append(overTraces, r)
		}
	}
	if err := printTraceTables(os.Stdout, overTraces); err != nil {
		return err
	}
	printTables(os.Stdout, all)
	printBusyTables(os.Stdout, all)
	return nil
}

func uniq(all []result, key func(result) string) []string {
	var keys []string
	for _, r := range all {
		if k := key(r); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func secs(ms float64) string {
	if ms == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s", ms/1000)
}

// ratio is how much a is above b, in percent to a tenth.
func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.1f%%", (a/b-1)*100)
}

// readResult reads the one JSON line a `realism load` printed.
func readResult(out []byte) (loadResult, error) {
	var r loadResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] == '{' {
			return r, json.Unmarshal(line, &r)
		}
	}
	return r, fmt.Errorf("no result in %q", out)
}

// traceRuns is how many downloads over the trace each setup makes.
const traceRuns = 5

// traceRTT is the round-trip time of the trace download, both setups.
const traceRTT = 40 * time.Millisecond

// printTraceTables prints printTraceTable for each of benchTraces that runs
// went over.
func printTraceTables(w io.Writer, runs []result) error {
	for _, bt := range benchTraces {
		over := slices.DeleteFunc(slices.Clone(runs), func(r result) bool { return r.Trace != bt.name })
		if len(over) == 0 {
			continue
		}
		if err := printTraceTable(w, bt, over); err != nil {
			return err
		}
	}
	return nil
}

// printTraceTable compares what downloads over bt had by every
// second (the median of each setup's runs) with what the trace carries, in
// payload (1448 bytes of every 1500-byte packet), and pace's with the
// packet-level link's on the same trace. It counts the seconds two ways:
// from the request, against what the trace carries from its start (the
// client's first packet); and, where the runs kept every read's time, from
// the download's first bytes, against what the trace carries over the same
// span half a round trip earlier, when those bytes could leave the link.
func printTraceTable(w io.Writer, bt benchTrace, runs []result) error {
	tr, err := pacing.ParseTrace(strings.NewReader(bt.text()))
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.Error != "" {
			return fmt.Errorf("the trace download through %s: %s", r.Setup, r.Error)
		}
	}
	fmt.Fprintf(w, "\n4 MB over a trace, %s, rtt %v (`pace { rtt %v; trace … }`, and the packet-level link delivering on the same trace's opportunities, as Mahimahi does), median of each setup's runs:\n", bt.about, traceRTT, traceRTT)
	fmt.Fprintf(w, "\nBytes arrived by each second counted from the request, against what the trace carries from its start (the client's first packet):\n\n")
	printTraceSeconds(w, runs, func(r loadResult) ([]float64, []float64) { return fromRequest(tr, r) })
	fmt.Fprintf(w, "\nBytes arrived by each second counted from the download's first bytes, against what the trace carries over the same span, half a round trip earlier (%v), when they left the link:\n\n", traceRTT/2)
	printTraceSeconds(w, runs, func(r loadResult) ([]float64, []float64) { return fromFirstByte(tr, r) })
	return nil
}

// median is the median of xs (the upper one of an even count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// payload is what tr carries by d from its start, in TCP payload.
func payload(tr *pacing.Trace, d time.Duration) float64 {
	return float64(tr.Opportunities(d)) * pacing.SegmentSize
}

// fromRequest is what a download over tr had by every second from its
// request, and what tr carries by then from its start.
func fromRequest(tr *pacing.Trace, r loadResult) (got, want []float64) {
	for i, n := range r.BySecond {
		got = append(got, float64(n))
		want = append(want, payload(tr, time.Duration(i+1)*time.Second))
	}
	return got, want
}

// fromFirstByte is what a download over tr had by every whole second from
// its first bytes' arrival (with r.Series, else nothing), and what tr
// carries over the same span half a round trip earlier.
func fromFirstByte(tr *pacing.Trace, r loadResult) (got, want []float64) {
	if len(r.Series) == 0 {
		return nil, nil
	}
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	first := ms(r.Series[0].Ms)
	from := first - traceRTT/2
	i, n := 0, int64(0)
	for s := time.Second; first+s <= ms(r.Series[len(r.Series)-1].Ms); s += time.Second {
		for ; i < len(r.Series) && ms(r.Series[i].Ms) <= first+s; i++ {
			n = r.Series[i].Bytes
		}
		got = append(got, float64(n))
		want = append(want, payload(tr, from+s+1)-payload(tr, from)) // by from+s, as the bytes are counted
	}
	return got, want
}

// printTraceSeconds prints, for every second, the medians over each setup's
// runs of what had arrived, of what the trace carried (as count says) and
// of their ratio, and pace's ratio against the link's (counted from the
// first bytes, each setup's span of the trace is its own).
func printTraceSeconds(w io.Writer, runs []result, count func(loadResult) (got, want []float64)) {
	type cell struct{ got, want, ratio []float64 }
	cells := map[string][]cell{}
	seconds := 0
	for _, r := range runs {
		got, want := count(r.loadResult)
		seconds = max(seconds, len(got))
		for i := range got {
			for len(cells[r.Setup]) <= i {
				cells[r.Setup] = append(cells[r.Setup], cell{})
			}
			c := &cells[r.Setup][i]
			c.got, c.want, c.ratio = append(c.got, got[i]), append(c.want, want[i]), append(c.ratio, got[i]/want[i])
		}
	}
	at := func(setup string, i int) (got, want, ratio float64, n int) {
		if i >= len(cells[setup]) {
			return 0, 0, 0, 0
		}
		c := cells[setup][i]
		return median(c.got), median(c.want), median(c.ratio), len(c.got)
	}
	if seconds == 0 {
		fmt.Fprintln(w, "(no run kept its reads' times)")
		return
	}
	fmt.Fprintln(w, "| second | the trace carries, link's span | packet-level link | link / trace | the trace carries, pace's span | pace | pace / trace | pace / link | runs (link, pace) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for i := range seconds {
		link, linkTrace, linkRatio, nl := at(setupLink, i)
		pace, paceTrace, paceRatio, np := at(setupPace, i)
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %s | %.0f | %.0f | %s | %s | %d, %d |\n", i+1, linkTrace, link, ratio(linkRatio, 1), paceTrace, pace, ratio(paceRatio, 1), ratio(paceRatio, linkRatio), nl, np)
	}
}
