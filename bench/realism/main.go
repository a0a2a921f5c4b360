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
	"strings"
	"time"
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
	Preset string `json:"preset"`
	Proto  string `json:"proto"`
	Page   string `json:"page"`
	Setup  string `json:"setup"`
	CC     string `json:"cc"` // the link's congestion control
	Run    int    `json:"run"`
	loadResult
}

func run() error {
	pageNames := flag.String("pages", "typical,small,download", "pages to load")
	presetNames := flag.String("presets", "slow-4g,3g", "presets: slow-4g, 3g, fast-4g")
	protos := flag.String("protos", "h1,h2", "protocols, both over TLS: h1, h2")
	setups := flag.String("setups", "link,pace,chrome,devtools", "setups")
	ccs := flag.String("cc", "cubic,bbr", "congestion controls of the packet-level link")
	runs := flag.Int("runs", 3, "loads of each page in each setup")
	out := flag.String("out", "bench/realism-last-run.jsonl", "where to keep every load's result")
	timeline := flag.Bool("timeline", false, "keep every resource's timing in the results")
	packets := flag.String("packets", "", "a folder to write every packet of the packet-level link's loads into, a CSV each")
	smoke := flag.Bool("smoke", false, "one load of the small page over HTTP/2 at slow-4g in each setup, with cubic")
	flag.Parse()
	if *smoke {
		*pageNames, *presetNames, *protos, *ccs, *runs = "small", "slow-4g", "h2", "cubic", 1
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
	if err := n.startServers(bin, site, work, chosen); err != nil {
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
		for _, p := range chosen {
			n.line.set(p.rtt, p.down, p.up, 1000)
			for _, proto := range strings.Split(*protos, ",") {
				for _, pg := range strings.Split(*pageNames, ",") {
					for run := 1; run <= *runs; run++ {
						for _, setup := range strings.Split(*setups, ",") {
							if cc != "cubic" && setup != setupLink {
								continue // only the packet-level link has a congestion control to vary
							}
							url, th := n.target(setup, p, proto, pg)
							r := result{Preset: p.name, Proto: proto, Page: pg, Setup: setup, CC: cc, Run: run}
							if *packets != "" && setup == setupLink {
								n.line.startLog()
							}
							r.loadResult = n.load(self, chromium, url, th, *timeline)
							if *packets != "" && setup == setupLink {
								os.MkdirAll(*packets, 0o755)
								name := fmt.Sprintf("%s-%s-%s-%s-%d.csv", p.name, proto, pg, cc, run)
								if err := n.line.writeLog(filepath.Join(*packets, name)); err != nil {
									return err
								}
							}
							say("%s %s %s %-8s %s run %d: %.0f ms, %s, whole %v %s", p.name, proto, pg, setup, cc, run, r.LoadMs, r.Protocol, r.whole(), r.Error)
							record(r)
						}
					}
				}
			}
		}
	}
	printTables(os.Stdout, all)
	say("every load's result is in %s", *out)
	for _, r := range all {
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

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "== "+format+"\n", args...)
}

// printTables prints, for every congestion control, page, protocol and
// preset, the median load time of each setup and the ratios that say how
// faithful each is.
func printTables(w io.Writer, all []result) {
	type cell struct{ preset, proto, page, setup, cc string }
	medians := map[cell]float64{}
	var loads = map[cell][]float64{}
	for _, r := range all {
		c := cell{r.Preset, r.Proto, r.Page, r.Setup, r.CC}
		loads[c] = append(loads[c], r.LoadMs)
	}
	for c, ms := range loads {
		slices.Sort(ms)
		medians[c] = ms[len(ms)/2]
	}
	ccs := uniq(all, func(r result) string { return r.CC })
	for _, cc := range ccs {
		fmt.Fprintf(w, "\nLoad-event time, median of each cell; the packet-level link with %s:\n\n", cc)
		fmt.Fprintln(w, "| page | protocol | preset | packet-level link | `pace <preset>` | Chrome's throttling | `pace`, `model devtools` | pace / link | Chrome / link | devtools / Chrome |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		for _, page := range uniq(all, func(r result) string { return r.Page }) {
			for _, proto := range uniq(all, func(r result) string { return r.Proto }) {
				for _, p := range uniq(all, func(r result) string { return r.Preset }) {
					get := func(setup string) float64 {
						if setup != setupLink {
							return medians[cell{p, proto, page, setup, "cubic"}]
						}
						return medians[cell{p, proto, page, setup, cc}]
					}
					link, pace, chrome, dt := get(setupLink), get(setupPace), get(setupChrome), get(setupDevTools)
					if link == 0 && pace == 0 && chrome == 0 && dt == 0 {
						continue
					}
					fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", page, proto, p,
						secs(link), secs(pace), secs(chrome), secs(dt), ratio(pace, link), ratio(chrome, link), ratio(dt, chrome))
				}
			}
		}
	}
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

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.0f%%", (a/b-1)*100)
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
