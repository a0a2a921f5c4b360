package pace

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// adaptPace adapts a site whose only directive is the given pace line (and
// block), and returns the pace handler's JSON, or the adapter's error.
func adaptPace(t *testing.T, directive string) (string, error) {
	t.Helper()
	cf := ":80 {\n" + directive + "\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		return "", err
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, route := range cfg.Apps.HTTP.Servers["srv0"].Routes {
		for _, h := range route.Handle {
			if strings.Contains(string(h), `"handler":"pace"`) {
				return string(h), nil
			}
		}
	}
	t.Fatalf("no pace handler in %s", out)
	return "", nil
}

func TestCaddyfileForms(t *testing.T) {
	tests := []struct{ name, caddyfile, want string }{
		{"bare", "pace", `{"handler":"pace"}`},
		{"chunk and interval", "pace 5chars 100ms", `{"chunk":"5chars","handler":"pace","interval":"100ms"}`},
		{"chunk with a space", "pace 5 chars 100ms", `{"chunk":"5 chars","handler":"pace","interval":"100ms"}`},
		{"size with a space", "pace 1 KiB", `{"chunk":"1 KiB","handler":"pace"}`},
		{"bytes then interval", "pace 512 1s", `{"chunk":"512","handler":"pace","interval":"1s"}`},
		{"with a matcher", "pace /img/* 1KiB 100ms", `{"chunk":"1KiB","handler":"pace","interval":"100ms"}`},
		{"block", "pace {\n chunk 2 chars\n interval 50ms\n content_type keep\n}",
			`{"chunk":"2 chars","content_type":"keep","handler":"pace","interval":"50ms"}`},
		{"line and block", "pace 3chars {\n interval 1s\n content_type text/plain; charset=utf-8\n}",
			`{"chunk":"3chars","content_type":"text/plain; charset=utf-8","handler":"pace","interval":"1s"}`},
		{"preset", "pace slow-4g", `{"handler":"pace","preset":"slow-4g"}`},
		{"offline", "pace offline", `{"handler":"pace","preset":"offline"}`},
		{"a named network", "pace slow-4g {\n name lab-1\n}", `{"handler":"pace","name":"lab-1","preset":"slow-4g"}`},
		{"preset with a matcher and overrides", "pace /api/* fast-4g {\n latency 0s\n}", `{"handler":"pace","latency":"0s","preset":"fast-4g"}`},
		{"every option", "pace {\n preset 3g\n chunk 3 words\n interval 1s\n rate 64 KiB\n latency 300ms\n jitter 20%\n after 1MiB\n" +
			" content_type keep\n share {remote_host}\n percent 50\n max_duration 2m\n upload_rate 500kbit\n}",
			`{"after":"1MiB","chunk":"3 words","content_type":"keep","handler":"pace","interval":"1s","jitter":"20%","latency":"300ms",` +
				`"max_duration":"2m","percent":"50","preset":"3g","rate":"64 KiB","share":"{http.request.remote.host}","upload_rate":"500kbit"}`},
		{"placeholders are kept for each request", "pace {\n rate {query.rate}\n chunk {http.request.header.X-Chunk}\n}",
			`{"chunk":"{http.request.header.X-Chunk}","handler":"pace","rate":"{http.request.uri.query.rate}"}`},
		{"match block", "pace {\n match {\n  status 2xx 404\n  header Content-Type text/*\n }\n}",
			`{"handler":"pace","match":{"headers":{"Content-Type":["text/*"]},"status_code":[2,404]}}`},
		{"match on one line", "pace 1KiB 100ms {\n match status 200\n}",
			`{"chunk":"1KiB","handler":"pace","interval":"100ms","match":{"status_code":[200]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := adaptPace(t, tc.caddyfile)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("adapted to %s, want %s", got, tc.want)
			}
		})
	}
}

// badConfigs are wrong pace configurations, each with what its error must
// say. The error must point at the line of the bad value: the pace line, or
// the last line of the block unless line says otherwise.
var badConfigs = []struct {
	caddyfile, mention string
	line               int
}{
	{"pace 5furlongs", `chunk "5furlongs": unknown unit "furlongs"`, 0},
	{"pace 0", `chunk "0": a chunk must hold at least one byte`, 0},
	{"pace 0chars", `chunk "0chars": the count of chars must be a whole number above zero`, 0},
	{"pace -5chars", `chunk "-5chars": does not start with a number`, 0},
	{"pace 1.5chars", `chunk "1.5chars": the count of chars must be a whole number`, 0},
	{"pace 2GiB", `chunk "2GiB": at most 1.0 GiB a chunk`, 0},
	{"pace 99999999999999999999", `chunk "99999999999999999999": at most`, 0},
	{"pace 99999999999999999999chars", `chunk "99999999999999999999chars"`, 0},
	{"pace fast", `chunk "fast": does not start with a number`, 0},
	{"pace 5 sentences", `chunk "5 sentences": unknown unit "sentences"`, 0},
	{"pace 5chars -1s", `interval "-1s": must not be negative`, 0},
	{"pace 5chars soon", `interval "soon": not a duration`, 0},
	{"pace 5chars 100", `interval "100": not a duration`, 0},
	{"pace 5chars 100ms extra", `too many arguments to pace: "5chars 100ms extra"`, 0},
	{"pace slow-4g 100ms", `a preset takes nothing after it on the pace line: "slow-4g 100ms"`, 0},
	{"pace {\n preset 5g\n}", `preset "5g": unknown preset (want 3g, slow-3g, slow-4g, fast-3g, fast-4g or offline)`, 0},
	{"pace slow4g", `preset "slow4g": unknown preset (did you mean slow-4g?)`, 0},
	{"pace {\n preset Fast-4G-\n}", `preset "Fast-4G-": unknown preset (did you mean fast-4g?)`, 0},
	{"pace {\n preset ofline\n}", `preset "ofline": unknown preset (did you mean offline?)`, 0},
	{"pace slow-4g {\n name two words\n}", `name takes one name, got 2 arguments`, 0},
	{"pace slow-4g {\n name lab/1\n}", `name "lab/1": a network's name is 1 to 64 letters, digits, dots, hyphens or underscores`, 0},
	{"pace 5chars {\n name lab\n}", `name "lab": works on a network, but none of preset, rtt and model is set`, 4},
	{"pace {\n rtt {query.rtt}\n name lab\n}", `rtt "{http.request.uri.query.rtt}": a named network's options are changed live through the admin API, not per request (name "lab")`, 5},
	{"pace {\n chunk\n}", `chunk takes a count and a unit`, 0},
	{"pace {\n chunk 5 chars please\n}", `chunk takes a count and a unit (5chars, 3 words, 1KiB, 512 bytes), got 3 arguments`, 0},
	{"pace {\n interval\n}", `interval takes one duration, got 0 arguments`, 0},
	{"pace {\n interval 1s 2s\n}", `interval takes one duration, got 2 arguments: "1s 2s"`, 0},
	{"pace {\n interval 1s\n interval 2s\n}", `interval is given twice`, 0},
	{"pace {\n speed 5\n}", `unrecognized pace subdirective "speed"`, 0},
	{"pace {\n rate 0\n}", `rate "0": a rate must be above zero bytes per second`, 0},
	{"pace {\n rate -64KiB\n}", `rate "-64KiB": does not start with a number`, 0},
	{"pace {\n rate fast\n}", `rate "fast": does not start with a number`, 0},
	{"pace {\n rate 10 parsecs\n}", `rate "10 parsecs": unknown unit "parsecs"`, 0},
	{"pace {\n rate 5TiB\n}", `rate "5TiB": at most 1.0 TiB per second`, 0},
	{"pace {\n upload_rate 0bit\n}", `upload_rate "0bit": a rate must be above zero`, 0},
	{"pace {\n latency -1s\n}", `latency "-1s": must not be negative`, 0},
	{"pace {\n latency a while\n}", `latency takes one duration, got 2 arguments`, 0},
	{"pace {\n jitter 150%\n}", `jitter "150%": must be from 0 to 100`, 0},
	{"pace {\n jitter lots\n}", `jitter "lots": not a percentage`, 0},
	{"pace {\n after -1KiB\n}", `after "-1KiB": does not start with a number`, 0},
	{"pace {\n percent 101\n}", `percent "101": must be from 0 to 100`, 0},
	{"pace {\n percent -5\n}", `percent "-5": not a percentage`, 0},
	{"pace {\n percent NaN\n}", `percent "NaN": not a percentage`, 0},
	{"pace {\n max_duration 0s\n}", `max_duration "0s": must be above zero`, 0},
	{"pace {\n max_duration forever\n}", `max_duration "forever": not a duration`, 0},
	{"pace {\n share {remote_host}\n}", `share "{http.request.remote.host}": shares a rate or a network, but none of rate, preset, rtt and model is set`, 4},
	{"pace {\n rtt soon\n}", `rtt "soon": not a duration`, 0},
	{"pace {\n rtt -150ms\n}", `rtt "-150ms": must not be negative`, 0},
	{"pace {\n model packets\n}", `model "packets": unknown model (want link or devtools)`, 0},
	{"pace {\n model devtools\n rtt 150ms\n}", `rtt "150ms": a round trip of the link model, but model is devtools (which has latency instead)`, 5},
	{"pace slow-4g {\n loss 150%\n}", `loss "150%": must be from 0 to 100 (want e.g. 2% or 2% burst 3)`, 0},
	{"pace slow-4g {\n loss 100%\n}", `loss "100%": must be below 100%`, 0},
	{"pace slow-4g {\n loss lots\n}", `loss "lots": not a percentage`, 0},
	{"pace slow-4g {\n loss 2% burst 0\n}", `loss "2% burst 0": the burst is a mean count of packets from 1 to 1000`, 0},
	{"pace slow-4g {\n loss 2% 3\n}", `loss "2% 3": not a percentage`, 0},
	{"pace slow-4g {\n outage 5s every 2s\n}", `outage "5s every 2s": an outage must last more than 0 and less than its period`, 0},
	{"pace slow-4g {\n outage 5s\n}", `outage "5s": want <duration> every <duration>, e.g. 2s every 30s`, 0},
	{"pace slow-4g {\n outage soon every 10s\n}", `outage "soon every 10s": "soon": not a duration`, 0},
	{"pace slow-4g {\n reset 110%\n}", `reset "110%": must be from 0 to 100`, 0},
	{"pace slow-4g {\n queue 0\n}", `queue "0": must be above zero`, 0},
	{"pace slow-4g {\n queue -5 packets\n}", `queue "-5 packets": a count of packets is a whole number from 1 to 1048576`, 0},
	{"pace slow-4g {\n queue 3 furlongs\n}", `queue "3 furlongs": not a queue (want a count of packets, a size or a duration, such as 1000 packets, 1MB or 2s, or fair)`, 0},
	{"pace slow-4g {\n queue 0s\n}", `queue "0s": must be above zero`, 0},
	{"pace {\n queue 100 packets\n}", `queue "100 packets": works on a network, but none of preset, rtt and model is set`, 4},
	{"pace {\n preset slow-4g\n model devtools\n queue fair\n}", `queue "fair": a queue is the link model's, but model is devtools`, 6},
	{"pace slow-4g {\n trace /no/such/file\n}", `trace "/no/such/file": stat /no/such/file: no such file or directory`, 0},
	{"pace slow-4g {\n trace {query.trace}\n}", `trace "{http.request.uri.query.trace}": a file, not a placeholder`, 4},
	{"pace {\n loss 2%\n}", `loss "2%": works on a network, but none of preset, rtt and model is set`, 4},
	{"pace {\n reset 10%\n}", `reset "10%": works on a network, but none of preset, rtt and model is set`, 4},
	{"pace {\n preset slow-4g\n model devtools\n loss 1%\n}", `loss "1%": packets are lost on the link model's link, but model is devtools`, 6},
	{"pace slow-4g {\n content_type text/plain\n}", `content_type "text/plain": a network never changes a response, and preset "slow-4g" sets one (want auto or keep)`, 4},
	{"pace {\n share\n}", `share takes one key, such as {remote_host}, got 0 arguments`, 0},
	{"pace {\n match\n}", `match needs status or header`, 0},
	{"pace {\n match {\n  status abc\n }\n}", `bad status value 'abc'`, 4},
	{"pace {\n match {\n  colour red\n }\n}", `unrecognized response matcher colour`, 4},
	{"pace {\n content_type\n}", `content_type takes auto, keep or a media type, got 0 arguments`, 0},
	{"pace {\n content_type text/\n}", `content_type "text/": not a media type`, 0},
	{"pace {\n content_type plain\n}", `content_type "plain": not a media type`, 0},
	{"pace {\n content_type auto keep\n}", `content_type "auto keep": not a media type`, 0},
	{"pace 5chars {\n chunk 6chars\n}", `chunk is given both on the pace line and in its block`, 0},
	{"pace 5chars 1s {\n interval 2s\n}", `interval is given both on the pace line and in its block`, 0},
}

func TestBadCaddyfilesAreRefusedWhenAdapted(t *testing.T) {
	for _, tc := range badConfigs {
		t.Run(tc.caddyfile, func(t *testing.T) {
			_, err := adaptPace(t, tc.caddyfile)
			if err == nil {
				t.Fatalf("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q\ndoes not say %q", err, tc.mention)
			}
			line := tc.line
			if line == 0 {
				line = strings.Count(tc.caddyfile, "\n") + 2
				if strings.Count(tc.caddyfile, "\n") > 0 {
					line--
				}
			}
			if where := fmt.Sprintf("Caddyfile:%d", line); !strings.Contains(err.Error(), where) {
				t.Errorf("error %q does not say %s", err, where)
			}
		})
	}
}

func TestBadJSONIsRefusedWhenLoaded(t *testing.T) {
	tests := []struct{ handler, mention string }{
		{`{"handler": "pace", "chunk": "5furlongs"}`, `chunk "5furlongs": unknown unit "furlongs"`},
		{`{"handler": "pace", "interval": "-3s"}`, `interval "-3s": must not be negative`},
		{`{"handler": "pace", "content_type": "nope"}`, `content_type "nope": not a media type`},
		{`{"handler": "pace", "rate": "0"}`, `rate "0": a rate must be above zero`},
		{`{"handler": "pace", "preset": "6g"}`, `preset "6g": unknown preset`},
		{`{"handler": "pace", "share": "{remote_host}"}`, `share "{remote_host}": shares a rate or a network, but none of rate, preset, rtt and model is set`},
		{`{"handler": "pace", "rtt": "150ms", "model": "devtools"}`, `rtt "150ms": a round trip of the link model, but model is devtools`},
		{`{"handler": "pace", "percent": "200"}`, `percent "200": must be from 0 to 100`},
	}
	for _, tc := range tests {
		cfg := `{"admin": {"disabled": true, "config": {"persist": false}},
			"apps": {"http": {"servers": {"s": {"listen": ["` + freeAddr(t) + `"],
			"routes": [{"handle": [` + tc.handler + `]}]}}}}}`
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			caddy.Stop()
			t.Fatalf("%s loaded without error", tc.handler)
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("error %q\ndoes not say %q", err, tc.mention)
		}
	}
}

func TestDefaults(t *testing.T) {
	slow4g := 562500 * time.Microsecond
	tests := []struct {
		name      string
		h         Handler
		chunk     pacing.ChunkSize
		every     time.Duration
		rate      float64
		latency   time.Duration
		pacesBody bool
	}{
		{"bare pace is 1KiB every 100ms", Handler{}, pacing.DefaultChunk, 100 * time.Millisecond, 0, 0, true},
		{"a chunk alone is not slowed", Handler{Chunk: "5chars"}, pacing.ChunkSize{N: 5, Unit: pacing.Chars}, 0, 0, 0, true},
		{"an interval alone paces 1KiB chunks", Handler{Interval: "1s"}, pacing.DefaultChunk, time.Second, 0, 0, true},
		{"content_type alone keeps the bare defaults", Handler{ContentType: "keep"}, pacing.DefaultChunk, 100 * time.Millisecond, 0, 0, true},
		{"jitter alone keeps the bare defaults", Handler{Jitter: "10%"}, pacing.DefaultChunk, 100 * time.Millisecond, 0, 0, true},
		{"interval 0 sends chunks as fast as the client takes them", Handler{Chunk: "1KiB", Interval: "0s"}, pacing.DefaultChunk, 0, 0, 0, true},
		{"a rate alone cuts 100 ms of itself", Handler{Rate: "20KiB"}, pacing.ChunkSize{N: 2048}, 0, 20480, 0, true},
		{"a rate keeps a chunk that is given", Handler{Rate: "20KiB", Chunk: "5 chars"}, pacing.ChunkSize{N: 5, Unit: pacing.Chars}, 0, 20480, 0, true},
		{"latency alone only holds the head", Handler{Latency: "300ms"}, pacing.DefaultChunk, 0, 0, 300 * time.Millisecond, false},
		{"upload_rate alone leaves the response alone", Handler{UploadRate: "1KiB"}, pacing.DefaultChunk, 0, 0, 0, false},
		{"a preset is a link: its pieces are flushed as they arrive", Handler{Preset: "slow-4g"}, pacing.ChunkSize{N: pacing.PieceSize(200000)}, 0, 200000, 0, true},
		{"options beside a preset override it", Handler{Preset: "slow-4g", Rate: "1MB", Latency: "10ms"}, pacing.ChunkSize{N: pacing.PieceSize(1e6)}, 0, 1e6, 10 * time.Millisecond, true},
		{"the devtools model has DevTools' numbers", Handler{Preset: "slow-4g", Model: "devtools"}, pacing.ChunkSize{N: pacing.PieceSize(180000)}, 0, 180000, slow4g, true},
		{"an rtt alone is a link of unlimited rate", Handler{RTT: "100ms"}, pacing.ChunkSize{N: pacing.InitialWindow}, 0, 0, 0, true},
		{"a placeholder leaves its option unset until a request comes", Handler{Rate: "{query.rate}"}, pacing.DefaultChunk, 0, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.h.parse(staticValue)
			if err != nil {
				t.Fatal(err)
			}
			if o.chunk != tc.chunk || o.interval != tc.every || downRate(o) != tc.rate || headLatency(o) != tc.latency || o.paced != tc.pacesBody {
				t.Errorf("got %v every %v at %v B/s, latency %v, body paced %v", o.chunk, o.interval, downRate(o), headLatency(o), o.paced)
			}
		})
	}
}

// downRate is the rate of a response's body: its own, or its network's
// down.
func downRate(o options) float64 {
	if o.net != nil {
		return o.net.cond.Down
	}
	return o.rate
}

// headLatency is the least time to a response's head: its own latency, or
// its devtools network's.
func headLatency(o options) time.Duration {
	if o.net != nil && o.net.cond.Model == pacing.DevToolsModel {
		return o.net.cond.Latency
	}
	return o.latency
}

// conditions are the options' network's, or the zero Network for none.
func conditions(o options) pacing.Network {
	if o.net == nil {
		return pacing.Network{}
	}
	return o.net.cond
}

func TestPresetsAreNamedLinks(t *testing.T) {
	for _, tc := range []struct {
		preset, model string
		want          pacing.Network
	}{
		{"3g", "", pacing.Network{RTT: 400 * time.Millisecond, Down: 62500, Up: 62500, Queue: defaultQueue}},
		{"slow-3g", "link", pacing.Network{RTT: 400 * time.Millisecond, Down: 62500, Up: 62500, Queue: defaultQueue}},
		{"slow-4g", "", pacing.Network{RTT: 150 * time.Millisecond, Down: 200000, Up: 93750, Queue: defaultQueue}},
		{"fast-3g", "", pacing.Network{RTT: 150 * time.Millisecond, Down: 200000, Up: 93750, Queue: defaultQueue}},
		{"fast-4g", "", pacing.Network{RTT: 60 * time.Millisecond, Down: 1125000, Up: 187500, Queue: defaultQueue}},
		// Chrome DevTools' own numbers, applied its way
		{"3g", "devtools", pacing.Network{Model: pacing.DevToolsModel, Latency: 2 * time.Second, Down: 50000, Up: 50000}},
		{"slow-4g", "devtools", pacing.Network{Model: pacing.DevToolsModel, Latency: 562500 * time.Microsecond, Down: 180000, Up: 84375}},
		{"fast-4g", "devtools", pacing.Network{Model: pacing.DevToolsModel, Latency: 165 * time.Millisecond, Down: 1012500, Up: 168750}},
	} {
		o, err := (&Handler{Preset: tc.preset, Model: tc.model}).parse(staticValue)
		if err != nil || o.net == nil || conditions(o) != tc.want {
			t.Errorf("%s, model %q: %+v (%v); want %+v", tc.preset, tc.model, conditions(o), err, tc.want)
		}
	}
	// Options beside a preset override its parts.
	o, _ := (&Handler{Preset: "slow-4g", RTT: "300ms", Rate: "1Mbit", UploadRate: "100kbit"}).parse(staticValue)
	if want := (pacing.Network{RTT: 300 * time.Millisecond, Down: 125000, Up: 12500, Queue: defaultQueue}); conditions(o) != want {
		t.Errorf("slow-4g with rtt, rate and upload_rate: %+v, want %+v", conditions(o), want)
	}
	o, _ = (&Handler{Preset: "slow-4g", Model: "devtools", Latency: "1s"}).parse(staticValue)
	if conditions(o).Latency != time.Second {
		t.Errorf("slow-4g, model devtools, latency 1s: %+v", conditions(o))
	}
	// rate alone stays per response
	if o, _ := (&Handler{Rate: "1MB"}).parse(staticValue); o.net != nil {
		t.Error("rate alone made a network")
	}
}

func TestUnmarshalCaddyfileSetsFields(t *testing.T) {
	d := caddyfile.NewTestDispenser("pace 5 chars 250ms {\n content_type keep\n}")
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.Chunk != "5 chars" || h.Interval != "250ms" || h.ContentType != "keep" {
		t.Errorf("got %+v", h)
	}
}

func TestAQueueIsACountASizeADurationOrFair(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want pacing.Queue
	}{
		{Handler{Preset: "slow-4g"}, pacing.Queue{Packets: 1000}},
		{Handler{RTT: "50ms"}, pacing.Queue{Packets: 1000}},
		{Handler{Preset: "slow-4g", Queue: "100 packets"}, pacing.Queue{Packets: 100}},
		{Handler{Preset: "slow-4g", Queue: "1 packet"}, pacing.Queue{Packets: 1}},
		{Handler{Preset: "slow-4g", Queue: "64KiB"}, pacing.Queue{Bytes: 65536}},
		{Handler{Preset: "slow-4g", Queue: "1 MB"}, pacing.Queue{Bytes: 1_000_000}},
		{Handler{Preset: "slow-4g", Queue: "250ms"}, pacing.Queue{Delay: 250 * time.Millisecond}},
		{Handler{Preset: "slow-4g", Queue: "fair"}, pacing.Queue{}},
		{Handler{Preset: "slow-4g", Model: "devtools"}, pacing.Queue{}},
	} {
		o, err := tc.h.parse(staticValue)
		if got := conditions(o).Queue; err != nil || got != tc.want {
			t.Errorf("%+v: queue %+v (%v), want %+v", tc.h, got, err, tc.want)
		}
	}
}
