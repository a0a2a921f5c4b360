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

// badConfigs are wrong pace configurations, each with what its error must say.
var badConfigs = []struct{ caddyfile, mention string }{
	{"pace 5furlongs", `chunk "5furlongs": unknown unit "furlongs"`},
	{"pace 0", `chunk "0": a chunk must hold at least one byte`},
	{"pace 0chars", `chunk "0chars": the count of chars must be a whole number above zero`},
	{"pace -5chars", `chunk "-5chars": does not start with a number`},
	{"pace 1.5chars", `chunk "1.5chars": the count of chars must be a whole number`},
	{"pace 2GiB", `chunk "2GiB": at most 1.0 GiB a chunk`},
	{"pace 99999999999999999999", `chunk "99999999999999999999": at most`},
	{"pace 99999999999999999999chars", `chunk "99999999999999999999chars"`},
	{"pace fast", `chunk "fast": does not start with a number`},
	{"pace 5chars -1s", `interval "-1s": must not be negative`},
	{"pace 5chars soon", `interval "soon": not a duration`},
	{"pace 5chars 100", `interval "100": not a duration`},
	{"pace 5chars 100ms extra", `too many arguments to pace: "5chars 100ms extra"`},
	{"pace {\n chunk\n}", `chunk takes a count and a unit`},
	{"pace {\n chunk 5 chars please\n}", `chunk takes a count and a unit (5chars, 1KiB, 512 bytes), got 3 arguments`},
	{"pace {\n interval\n}", `interval takes one duration, got 0 arguments`},
	{"pace {\n interval 1s 2s\n}", `interval takes one duration, got 2 arguments: "1s 2s"`},
	{"pace {\n interval 1s\n interval 2s\n}", `interval is given twice`},
	{"pace {\n speed 5\n}", `unrecognized pace subdirective "speed"`},
	{"pace {\n content_type\n}", `content_type takes auto, keep or a media type, got 0 arguments`},
	{"pace {\n content_type text/\n}", `content_type "text/": not a media type`},
	{"pace {\n content_type plain\n}", `content_type "plain": not a media type`},
	{"pace {\n content_type auto keep\n}", `content_type "auto keep": not a media type`},
	{"pace 5chars {\n chunk 6chars\n}", `chunk is given both on the pace line and in its block`},
	{"pace 5chars 1s {\n interval 2s\n}", `interval is given both on the pace line and in its block`},
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
			// the line of the bad value: the pace line, or the last line of the block
			line := strings.Count(tc.caddyfile, "\n") + 2
			if strings.Count(tc.caddyfile, "\n") > 0 {
				line--
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
	tests := []struct {
		name   string
		h      Handler
		chunk  pacing.ChunkSize
		every  time.Duration
		ctMode string
	}{
		{"bare pace is 1KiB every 100ms", Handler{}, pacing.DefaultChunk, 100 * time.Millisecond, contentTypeAuto},
		{"a chunk alone is not slowed", Handler{Chunk: "5chars"}, pacing.ChunkSize{N: 5, Unit: pacing.Chars}, 0, contentTypeAuto},
		{"an interval alone paces 1KiB chunks", Handler{Interval: "1s"}, pacing.DefaultChunk, time.Second, contentTypeAuto},
		{"content_type alone keeps the bare defaults", Handler{ContentType: "keep"}, pacing.DefaultChunk, 100 * time.Millisecond, contentTypeKeep},
		{"interval 0 sends chunks as fast as the client takes them", Handler{Chunk: "1KiB", Interval: "0s"}, pacing.DefaultChunk, 0, contentTypeAuto},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.h.parse()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.chunk != tc.chunk || cfg.interval != tc.every || cfg.contentType != tc.ctMode {
				t.Errorf("got %v every %v, content_type %s", cfg.chunk, cfg.interval, cfg.contentType)
			}
		})
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
