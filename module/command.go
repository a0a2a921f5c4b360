package pace

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/caddy-pace/caddy-pace/pacing"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "pace",
		Usage: "--to <upstream> | --root <dir> [--listen <addr>] [--admin <addr>] [--<option> <value>]...",
		Short: "A pacing reverse proxy or file server, with no config file",
		Long: `
Starts a plain-HTTP server that paces every response: a reverse proxy to
--to, or a file server of --root. It prints what it serves and how it paces,
and runs until stopped (Ctrl-C). The admin endpoint is off, unless --admin
gives it an address: then its network, named default, changes live:

  curl -X PATCH localhost:2019/pace/networks/default -d '{"preset":"offline"}'

The pacing flags are the pace directive's options:
` + flagHelp() + `With none of them, it paces 1KiB every 100ms.

  caddy pace --to localhost:3000 --preset slow-4g
  caddy pace --root ./public --chunk 5chars --interval 100ms --listen :8080
  caddy pace --to localhost:3000 --preset slow-4g --admin localhost:2019
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("to", "", "Upstream to proxy to, e.g. localhost:3000")
			cmd.Flags().String("root", "", "Directory to serve files from")
			cmd.Flags().String("listen", "localhost:8080", "Address to listen on")
			cmd.Flags().String("admin", "", "Address of Caddy's admin API, to change the network live: localhost:2019 (default: off)")
			for _, opt := range flagOptions() {
				cmd.Flags().String(flagName(opt), "", opt.help)
			}
			cmd.SetFlagErrorFunc(commandError)
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return commandError(cmd, strayArgument(os.Args[1:], args[0]))
				}
				return commandError(cmd, runPace(cmd.Flags()))
			}
		},
	})
}

// flagOptions are the options the command has a flag for: all but the
// network's name, which is commandNetwork.
func flagOptions() []*option {
	var opts []*option
	for i := range optionTable {
		if !optionTable[i].is(noFlag) {
			opts = append(opts, &optionTable[i])
		}
	}
	return opts
}

// flagName is an option's flag: its name with - for _.
func flagName(opt *option) string {
	return strings.ReplaceAll(opt.name, "_", "-")
}

// flagHelp lists the pacing flags, one a line, for the command's help.
func flagHelp() string {
	var b strings.Builder
	for _, opt := range flagOptions() {
		fmt.Fprintf(&b, "  --%-14s%s\n", flagName(opt), opt.help)
	}
	return b.String()
}

// commandError prints a command-line mistake as one plain line on stderr
// (not as a log line), and has caddy exit with status 1. It passes nil
// through.
func commandError(cmd *cobra.Command, err error) error {
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "caddy pace: %v\n", err)
		cmd.SilenceErrors = true
	}
	return err
}

// strayArgument is the error for an argument that no flag takes, found in
// argv (the command line after the program's name): it suggests the quoted
// value when the argument is the second word of the flag value before it,
// as in --chunk 5 chars.
func strayArgument(argv []string, stray string) error {
	var flag, value string
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		name, inline, hasInline := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case strings.HasPrefix(arg, "-") && hasInline:
			flag, value = name, inline
		case strings.HasPrefix(arg, "-") && i+1 < len(argv):
			flag, value = name, argv[i+1]
			i++
		case arg == stray && flag != "":
			joined := value + " " + stray
			if commandValueParses(flag, joined) {
				return fmt.Errorf("unexpected argument %q (did you mean --%s %q?)", stray, flag, joined)
			}
			return fmt.Errorf("unexpected argument %q (each flag takes one value: quote a value that has spaces)", stray)
		}
	}
	return fmt.Errorf("unexpected argument %q (caddy pace takes only flags: see caddy help pace)", stray)
}

// commandValueParses reports whether v is a good value for the pace option
// behind flag.
func commandValueParses(flag, v string) bool {
	for _, opt := range flagOptions() {
		if flagName(opt) == flag {
			var scratch draft
			return opt.parse(&scratch, v) == nil
		}
	}
	return false
}

// runPace starts the server that the flags describe and runs it until the
// process is stopped.
func runPace(fl *pflag.FlagSet) error {
	values := map[string]string{}
	for _, name := range []string{"to", "root", "listen", "admin"} {
		values[name], _ = fl.GetString(name)
	}
	for _, opt := range flagOptions() {
		values[flagName(opt)], _ = fl.GetString(flagName(opt))
	}
	cfg, summary, err := paceCommandConfig(values)
	if err != nil {
		return err
	}
	// Caddy listens with SO_REUSEPORT, for graceful reloads, so a second
	// caddy pace could share the port with the first and take some of its
	// requests. A plain listen first fails as it does against any program.
	for _, addr := range []string{values["listen"], values["admin"]} {
		if addr == "" {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		l.Close()
	}
	if err := caddy.Run(cfg); err != nil {
		return err
	}
	fmt.Println(summary)
	select {}
}

// paceCommandConfig makes the config of `caddy pace` from its flags' values,
// and a line that says what it serves and how it paces. An error names the
// flag and the value.
func paceCommandConfig(values map[string]string) (*caddy.Config, string, error) {
	to, root, listen, adminAddr := values["to"], values["root"], values["listen"], values["admin"]
	switch {
	case to == "" && root == "":
		return nil, "", fmt.Errorf("give --to <upstream> to proxy, or --root <dir> to serve files")
	case to != "" && root != "":
		return nil, "", fmt.Errorf("--to %q and --root %q: give one, not both", to, root)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, "", fmt.Errorf("--listen %q: not a host:port address (want e.g. localhost:8080 or :8080)", listen)
	}
	if _, _, err := net.SplitHostPort(adminAddr); adminAddr != "" && err != nil {
		return nil, "", fmt.Errorf("--admin %q: not a host:port address (want e.g. localhost:2019)", adminAddr)
	}
	var pace Handler
	for _, opt := range flagOptions() {
		v := values[flagName(opt)]
		if v == "" {
			continue
		}
		var scratch draft
		if static := strings.TrimSpace(staticValue(v)); static != "" {
			if err := opt.parse(&scratch, static); err != nil {
				return nil, "", fmt.Errorf("--%s %w", flagName(opt), err)
			}
		}
		*opt.field(&pace) = expandShorthands(v)
	}
	if err := pace.check(); err != nil {
		return nil, "", err
	}
	o, err := pace.parse(staticValue)
	if err != nil {
		return nil, "", err
	}
	if o.net != nil {
		pace.Name = commandNetwork
	}

	var next json.RawMessage
	var serves string
	if to != "" {
		dial := strings.TrimPrefix(to, "http://")
		if strings.Contains(dial, "://") || strings.Contains(dial, "/") {
			return nil, "", fmt.Errorf("--to %q: want an http upstream as host:port, e.g. localhost:3000", to)
		}
		if _, _, err := net.SplitHostPort(dial); err != nil {
			dial = net.JoinHostPort(dial, "80")
		}
		proxy := reverseproxy.Handler{Upstreams: reverseproxy.UpstreamPool{{Dial: dial}}}
		next = caddyconfig.JSONModuleObject(proxy, "handler", "reverse_proxy", nil)
		serves = "proxying to http://" + dial
	} else {
		if info, err := os.Stat(root); err != nil || !info.IsDir() {
			return nil, "", fmt.Errorf("--root %q: not a directory", root)
		}
		files := fileserver.FileServer{Root: root, Browse: &fileserver.Browse{}}
		next = caddyconfig.JSONModuleObject(files, "handler", "file_server", nil)
		serves = "serving files from " + root
		// Pace files, not directory listings: a listing is a page to pick
		// from, and paced by characters a long one would take minutes.
		// file_server gives every file an ETag and a listing none.
		pace.Match = &caddyhttp.ResponseMatcher{Headers: http.Header{"Etag": {}}}
	}
	server := &caddyhttp.Server{
		Listen:    []string{listen},
		AutoHTTPS: &caddyhttp.AutoHTTPSConfig{Disabled: true},
		Routes: caddyhttp.RouteList{{
			HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(pace, "handler", "pace", nil), next},
		}},
	}
	httpApp := caddyhttp.App{Servers: map[string]*caddyhttp.Server{"pace": server}}
	var persist bool
	cfg := &caddy.Config{
		Admin:   &caddy.AdminConfig{Disabled: adminAddr == "", Listen: adminAddr, Config: &caddy.ConfigSettings{Persist: &persist}},
		AppsRaw: caddy.ModuleMap{"http": caddyconfig.JSON(httpApp, nil)},
	}
	summary := fmt.Sprintf("caddy pace: %s at http://%s, %s", serves, reachable(listen), describe(o, values["share"]))
	switch {
	case adminAddr != "" && o.net != nil:
		summary += fmt.Sprintf("\ncaddy pace: the admin API at http://%[1]s changes the network live:\n  curl -X PATCH %[1]s/pace/networks/%[2]s -d '{\"preset\":\"offline\"}'", reachable(adminAddr), commandNetwork)
	case adminAddr != "":
		summary += fmt.Sprintf("\ncaddy pace: the admin API is at http://%s, with no network to change (give --preset or --rtt)", reachable(adminAddr))
	}
	return cfg, summary, nil
}

// expandShorthands writes the Caddyfile's placeholder shorthands in v in
// full, as the Caddyfile does: {cookie.pace_link} is
// {http.request.cookie.pace_link} in JSON.
func expandShorthands(v string) string {
	segment := caddyfile.Segment{{Text: v}}
	httpcaddyfile.NewShorthandReplacer().ApplyToSegment(&segment)
	return segment[0].Text
}

// reachable is an address to listen on as one to connect to: localhost for
// all interfaces.
func reachable(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "localhost" + addr
	}
	return addr
}

// commandNetwork is the name of the command's network, for the admin API.
const commandNetwork = "default"

// describe says how options pace, for people; share is the option as
// written.
func describe(o options, share string) string {
	if o.net != nil {
		return o.net.describe(o.latency, share)
	}
	var parts []string
	if o.paced {
		chunk := o.chunk.String()
		switch {
		case o.interval > 0 && o.rate > 0:
			parts = append(parts, fmt.Sprintf("%s chunks, one per %v, at most %s/s", chunk, o.interval, humanize.IBytes(uint64(o.rate))))
		case o.interval > 0:
			parts = append(parts, fmt.Sprintf("%s every %v", chunk, o.interval))
		case o.rate > 0:
			parts = append(parts, fmt.Sprintf("%s/s in %s chunks", humanize.IBytes(uint64(o.rate)), chunk))
		default:
			parts = append(parts, chunk+" chunks as fast as the client takes them")
		}
	}
	if o.latency > 0 {
		parts = append(parts, fmt.Sprintf("the head held %v", o.latency))
	}
	if o.uploadRate > 0 {
		parts = append(parts, fmt.Sprintf("uploads read at %s/s", humanize.IBytes(uint64(o.uploadRate))))
	}
	return "pacing " + strings.Join(parts, ", ")
}

// describe says what network n is, for people: "a slow-4g link per client:
// 150ms round trip, 1.6 Mbit/s down, 750 kbit/s up"; latency is how long
// heads are held beside it, and share the links' key as written.
func (n *network) describe(latency time.Duration, share string) string {
	c := n.cond
	name := "link"
	if n.preset != "" {
		name = n.preset + " link"
	}
	switch {
	case strings.Contains(share, "{"):
		name = "a " + name + " per " + share + " (per client where it is empty)"
	case share != "":
		name = "one " + name + " for every client (share " + share + ")"
	default:
		name = "a " + name + " per client"
	}
	var parts []string
	if c.Model == pacing.DevToolsModel {
		name += " as Chrome DevTools throttles it"
		parts = append(parts, fmt.Sprintf("%v latency", c.Latency))
	} else {
		parts = append(parts, fmt.Sprintf("%v round trip", c.RTT))
	}
	for _, way := range []struct {
		rate float64
		name string
	}{{c.Down, "down"}, {c.Up, "up"}} {
		if way.rate > 0 {
			parts = append(parts, bitsPerSecond(way.rate)+" "+way.name)
		}
	}
	if latency > 0 {
		parts = append(parts, fmt.Sprintf("the head held %v more", latency))
	}
	return "pacing " + name + ": " + strings.Join(parts, ", ")
}

// bitsPerSecond writes a rate in bytes per second as bits: "1.6 Mbit/s".
func bitsPerSecond(bytesPerSecond float64) string {
	bits := bytesPerSecond * 8
	for _, unit := range []struct {
		scale float64
		name  string
	}{{1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if bits >= unit.scale {
			return strconv.FormatFloat(bits/unit.scale, 'f', -1, 64) + " " + unit.name
		}
	}
	return strconv.FormatFloat(bits, 'f', -1, 64) + " bit/s"
}
