package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The two namespaces: the client's, where Chromium runs (and, on loopback,
// the Caddy of the setups without the packet-level link), and the server's,
// at the other end of the link.
const (
	clientNS   = "pace-realism-c"
	serverNS   = "pace-realism-s"
	clientAddr = "10.77.0.1"
	serverAddr = "10.77.0.2"
)

type namespaces struct {
	line    delayLine
	tuns    []*os.File
	servers []*exec.Cmd
}

// newNamespaces makes the two namespaces, joined by the delay line.
func newNamespaces() (*namespaces, error) {
	n := &namespaces{}
	for _, ns := range []string{clientNS, serverNS} {
		exec.Command("ip", "netns", "del", ns).Run() // left by a run that was killed
	}
	// A new namespace starts with the host's congestion control, and may
	// then choose only among net.ipv4.tcp_allowed_congestion_control, which
	// often lacks cubic: so the namespaces are made while the host's is
	// cubic, which they keep, and the host gets its own back at once.
	const ccKnob = "/proc/sys/net/ipv4/tcp_congestion_control"
	hostCC, err := os.ReadFile(ccKnob)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(ccKnob, []byte("cubic"), 0o644); err != nil {
		return nil, fmt.Errorf("congestion control cubic: %w", err)
	}
	for _, ns := range []string{clientNS, serverNS} {
		err = exec.Command("ip", "netns", "add", ns).Run()
		if err != nil {
			break
		}
	}
	os.WriteFile(ccKnob, hostCC, 0o644)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("ip netns add: %w", err)
	}
	var steps [][]string
	for _, side := range []struct{ ns, dev, addr, peer string }{
		{clientNS, "tunc", clientAddr, serverAddr},
		{serverNS, "tuns", serverAddr, clientAddr},
	} {
		in := []string{"ip", "netns", "exec", side.ns}
		steps = append(steps,
			append(in, "ip", "link", "set", "lo", "up"),
			append(in, "ip", "tuntap", "add", "dev", side.dev, "mode", "tun"),
			append(in, "ip", "addr", "add", side.addr, "peer", side.peer, "dev", side.dev),
			append(in, "ip", "link", "set", side.dev, "up"))
	}
	for _, step := range steps {
		if out, err := exec.Command(step[0], step[1:]...).CombinedOutput(); err != nil {
			n.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(step, " "), err, out)
		}
	}
	client, err := openTUN(clientNS, "tunc")
	if err != nil {
		n.close()
		return nil, err
	}
	server, err := openTUN(serverNS, "tuns")
	if err != nil {
		client.Close()
		n.close()
		return nil, err
	}
	n.tuns = []*os.File{client, server}
	go n.line.run(client, server)
	return n, nil
}

func (n *namespaces) close() {
	for _, cmd := range n.servers {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	for _, f := range n.tuns {
		f.Close()
	}
	for _, ns := range []string{clientNS, serverNS} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// setCongestionControl sets TCP's congestion control in both namespaces.
func (n *namespaces) setCongestionControl(cc string) error {
	for _, ns := range []string{clientNS, serverNS} {
		if out, _ := exec.Command("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.tcp_congestion_control").Output(); strings.TrimSpace(string(out)) == cc {
			continue
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-w", "net.ipv4.tcp_congestion_control="+cc).CombinedOutput(); err != nil {
			return fmt.Errorf("congestion control %s in %s: %v: %s", cc, ns, err, out)
		}
	}
	return nil
}

var protoIndex = map[string]int{"h1": 1, "h2": 2, "h3": 3}

// protocols are what a server of a port serves, by the protocol index its
// last digit is.
var protocols = map[int]string{1: "h1", 2: "h1 h2", 3: "h1 h2 h3"}

var setupIndex = map[string]int{setupPace: 1, setupChrome: 2, setupDevTools: 3}

// port is where a loopback setup serves a preset over a protocol, at the
// loss of the given index in the run's list.
func port(p preset, setup, proto string, loss int) int {
	for i, q := range presets {
		if q.name == p.name {
			return 10000 + loss*1000 + i*100 + setupIndex[setup]*10 + protoIndex[proto]
		}
	}
	panic(p.name)
}

// The downloads' servers, plain HTTP: behind the link, and pace's (those
// with a trace are benchTraces').
const (
	downloadLinkPort = 8480
	downloadPacePort = 9980
)

// startServers starts the Caddy behind the packet-level link, in the
// server's namespace, and the Caddy of the loopback setups, in the client's.
func (n *namespaces) startServers(bin, site, work string, chosen []preset, losses []float64, downloadLoss float64, queues []int) error {
	global := func(ports []int) string {
		var b strings.Builder
		b.WriteString("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tlog {\n\t\tlevel ERROR\n\t}\n")
		for _, p := range ports {
			fmt.Fprintf(&b, "\tservers :%d {\n\t\tprotocols %s\n\t}\n", p, protocols[p%10])
		}
		b.WriteString("}\n")
		return b.String()
	}
	root := "\troot * " + site + "\n"
	// Uploads go to the sink, which reads them.
	upload := fmt.Sprintf("\thandle /upload {\n\t\treverse_proxy 127.0.0.1:%d\n\t}\n", sinkPort)
	site = "\ttls internal\n" + root + upload
	serverConfig := global([]int{8441, 8442, 8443}) + fmt.Sprintf("https://%s:8441, https://%s:8442, https://%s:8443 {\n%s\tfile_server\n}\n", serverAddr, serverAddr, serverAddr, site) +
		fmt.Sprintf("http://%s:%d {\n%s\tfile_server\n}\n", serverAddr, downloadLinkPort, root)

	var ports []int
	var sites strings.Builder
	for li, loss := range losses {
		for _, p := range chosen {
			lossLine := ""
			if loss > 0 {
				lossLine = fmt.Sprintf("\t\tloss %g%%\n", loss)
			}
			for setup, pace := range map[string]string{
				setupPace:     "\tpace {\n\t\tpreset " + p.name + "\n" + lossLine + "\t}\n",
				setupChrome:   "",
				setupDevTools: "\tpace {\n\t\tpreset " + p.name + "\n\t\tmodel devtools\n\t}\n",
			} {
				if loss > 0 && setup != setupPace {
					continue
				}
				for proto := range protoIndex {
					if proto == "h3" && setup != setupPace {
						continue // HTTP/3 is measured through the link and pace
					}
					port := port(p, setup, proto, li)
					ports = append(ports, port)
					fmt.Fprintf(&sites, "https://127.0.0.1:%d {\n%s%s\tfile_server\n}\n", port, site, pace)
				}
			}
		}
	}
	fmt.Fprintf(&sites, "http://127.0.0.1:%d {\n%s\tpace {\n\t\trtt 100ms\n\t\trate 8Mbit\n\t\tupload_rate 8Mbit\n\t\tloss %g%%\n\t}\n\tfile_server\n}\n",
		downloadPacePort, root, downloadLoss)
	for _, q := range queues {
		port := busyPort(q)
		ports = append(ports, port)
		fmt.Fprintf(&sites, "https://127.0.0.1:%d {\n%s\tpace {\n\t\tpreset slow-4g\n\t\tqueue %d packets\n\t}\n\tfile_server\n}\n", port, site, q)
	}
	for i, bt := range benchTraces {
		traceFile := filepath.Join(work, fmt.Sprintf("%d.trace", i))
		if err := os.WriteFile(traceFile, []byte(bt.text()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&sites, "http://127.0.0.1:%d {\n%s\tpace {\n\t\trtt %v\n\t\ttrace %s\n\t}\n\tfile_server\n}\n", bt.port, root, traceRTT, traceFile)
	}
	clientConfig := global(ports) + sites.String()

	self, _ := os.Executable()
	for _, ns := range []string{serverNS, clientNS} {
		sink := exec.Command("ip", "netns", "exec", ns, self, "sink")
		if err := sink.Start(); err != nil {
			return err
		}
		n.servers = append(n.servers, sink)
	}
	for _, s := range []struct {
		ns, config, probe string
	}{
		{serverNS, serverConfig, fmt.Sprintf("https://%s:8442/small.html", serverAddr)},
		{clientNS, clientConfig, fmt.Sprintf("https://127.0.0.1:%d/small.html", ports[len(ports)-1])},
	} {
		path := filepath.Join(work, s.ns+".Caddyfile")
		if err := os.WriteFile(path, []byte(s.config), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("ip", "netns", "exec", s.ns, bin, "run", "--config", path)
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(work, s.ns+"-data"), "XDG_CONFIG_HOME="+filepath.Join(work, s.ns+"-config"))
		log, err := os.Create(filepath.Join(work, s.ns+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return err
		}
		n.servers = append(n.servers, cmd)
		if out, err := exec.Command("ip", "netns", "exec", clientNS, self, "probe", "-url", s.probe).CombinedOutput(); err != nil {
			logged, _ := os.ReadFile(log.Name())
			return fmt.Errorf("the Caddy in %s does not answer %s: %v %s\n%s", s.ns, s.probe, err, out, logged)
		}
	}
	return nil
}

// target is the URL of a page in a setup, and the throttling Chromium
// applies to it.
func (n *namespaces) target(setup string, p preset, proto, page string, loss int) (string, throttle) {
	file := page + ".html"
	if setup == setupLink {
		return fmt.Sprintf("https://%s:%d/%s", serverAddr, 8440+protoIndex[proto], file), throttle{}
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/%s", port(p, setup, proto, loss), file)
	if setup == setupChrome {
		return url, throttle{latency: p.latency, down: p.dtDown, up: p.dtUp, configured: true}
	}
	return url, throttle{}
}

// load loads a page once in Chromium, in the client's namespace; over
// HTTP/3 if its port serves it.
func (n *namespaces) load(self, chromium, url string, th throttle, timeline bool) loadResult {
	args := []string{"load", "-url", url, "-chromium", chromium, "-timeline=" + strconv.FormatBool(timeline)}
	if origin := strings.Split(strings.TrimPrefix(url, "https://"), "/")[0]; strings.HasSuffix(origin, "3") {
		args = append(args, "-quic", origin) // its port ends in h3's index
	}
	if th.configured {
		args = append(args, "-latency", th.latency.String(), "-down", strconv.FormatFloat(th.down, 'f', -1, 64), "-up", strconv.FormatFloat(th.up, 'f', -1, 64))
	}
	return n.inClient(self, args...)
}

// inClient runs this program in the client's namespace with args (load or
// fetch), and returns the result it prints.
func (n *namespaces) inClient(self string, args ...string) loadResult {
	out, err := exec.Command("ip", append([]string{"netns", "exec", clientNS, self}, args...)...).Output()
	if err != nil {
		return loadResult{Error: fmt.Sprintf("%s: %v", args[0], err)}
	}
	r, err := readResult(out)
	if err != nil {
		return loadResult{Error: err.Error()}
	}
	return r
}

// busy runs one busy case in the client's namespace against base.
func (n *namespaces) busy(self, chromium, base string, upload bool) *busyResult {
	cmd := exec.Command("ip", "netns", "exec", clientNS, self, "busy", "-base", base, "-chromium", chromium, "-upload="+strconv.FormatBool(upload))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r busyResult
	if err == nil {
		err = json.Unmarshal(bytes.TrimSpace(out), &r)
	}
	if err != nil {
		r.Error = fmt.Sprintf("busy: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return &r
}

// downloadURL is the 1 MiB file behind the link, or behind pace.
func (n *namespaces) downloadURL(setup string) string {
	if setup == setupLink {
		return fmt.Sprintf("http://%s:%d/mib.bin", serverAddr, downloadLinkPort)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/mib.bin", downloadPacePort)
}

// fetch downloads a file once, on a new connection, in the client's
// namespace, and returns how long it took as a load's time.
func (n *namespaces) fetch(self, url string, size int64, flags ...string) loadResult {
	return n.inClient(self, append([]string{"fetch", "-url", url, "-size", strconv.FormatInt(size, 10)}, flags...)...)
}

// runFetch is `realism fetch`: one download on a new connection, whose time
// and size it prints as a load's result, and what had arrived at every
// second (and with -series, at every read).
func runFetch(args []string) {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	url := fs.String("url", "", "what to download")
	size := fs.Int64("size", 1<<20, "its size")
	series := fs.Bool("series", false, "and what had arrived at every read")
	fs.Parse(args)
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableCompression: true}}
	start := time.Now()
	var r loadResult
	resp, err := client.Get(*url)
	if err == nil {
		var n int64
		buf := make([]byte, 64<<10)
		for {
			m, rerr := resp.Body.Read(buf)
			for len(r.BySecond) < int(time.Since(start)/time.Second) {
				r.BySecond = append(r.BySecond, n)
			}
			n += int64(m)
			if *series && m > 0 {
				r.Series = append(r.Series, arrived{float64(time.Since(start)) / float64(time.Millisecond), n})
			}
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
		resp.Body.Close()
		if err == nil && n != *size {
			err = fmt.Errorf("%d bytes, want %d", n, *size)
		}
	}
	r.LoadMs = float64(time.Since(start)) / float64(time.Millisecond)
	if err != nil {
		r.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// runProbe is `realism probe`: it waits until a URL answers, for a minute.
func runProbe(args []string) {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	url := fs.String("url", "", "what to ask")
	fs.Parse(args)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var resp *http.Response
		if resp, err = client.Get(*url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
