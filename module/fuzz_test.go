package pace

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// FuzzCaddyfile feeds the pace directive any text after its name. Whatever it
// is, the parser returns an error that says where in the file, or a Handler
// whose options load either with an error that names an option and its value
// or as options that are within bounds. It never panics.
func FuzzCaddyfile(f *testing.F) {
	for _, tc := range badConfigs {
		f.Add(strings.TrimPrefix(tc.caddyfile, "pace"))
	}
	for _, s := range []string{
		"", " 5chars 100ms", " slow-4g", " /img/* 1KiB 100ms", " 5 chars 250ms {\n content_type keep\n}",
		" {\n preset 3g\n chunk 3 words\n interval 1s\n rate 64 KiB\n latency 300ms\n jitter 20%\n after 1MiB\n" +
			" content_type keep\n share {remote_host}\n percent 50\n max_duration 2m\n upload_rate 500kbit\n}",
		" {\n match {\n  status 2xx 404\n  header Content-Type text/*\n }\n}",
		" {\n rate {query.rate}\n chunk {http.request.header.X-Chunk}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("pace" + body)); err != nil {
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Fatalf("error %q does not say where", err)
			}
			return
		}
		if err := h.check(); err != nil {
			checkNamesOption(t, err, "")
			return
		}
		o, err := h.parse(staticValue)
		if err != nil {
			checkNamesOption(t, err, "")
			return
		}
		checkBounded(t, o)
	})
}

// FuzzPerRequestValue gives one option, set by a placeholder, any value a
// client could send. The value is refused with an error that names the option
// and quotes the value, or it parses to options within bounds.
func FuzzPerRequestValue(f *testing.F) {
	for i, v := range []string{
		"1", "100h", "99999999999999999999", "-1", "NaN", "Inf", "1e400", "5\x00chars", "0x10", "1_000",
		"18446744073709551616 TiB", "9223372036854775807ns", "+Inf%", "1..2s", "\xff\xfe", " 5 chars ",
	} {
		for j := range optionTable {
			f.Add(uint8(j+i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		opt := optionTable[int(which)%len(optionTable)]
		if opt.name == "trace" || opt.name == "upload_trace" {
			return // a file, which a placeholder may not name (see check)
		}
		var h Handler
		*opt.field(&h) = "{query.v}"
		if opt.name == "share" {
			h.Rate = "1KiB"
		}
		o, err := h.parse(func(v string) string { return strings.ReplaceAll(v, "{query.v}", value) })
		if err != nil {
			checkNamesOption(t, err, opt.name+" "+strconv.Quote(strings.TrimSpace(value)))
			return
		}
		checkBounded(t, o)
	})
}

// checkNamesOption asserts that err starts with want, or, if want is empty,
// with the name of an option and a quoted value.
func checkNamesOption(t *testing.T, err error, want string) {
	t.Helper()
	msg := err.Error()
	if want != "" {
		if !strings.HasPrefix(msg, want) {
			t.Fatalf("error %q does not start with %q", msg, want)
		}
		return
	}
	for _, opt := range optionTable {
		if strings.HasPrefix(msg, opt.name+` "`) {
			return
		}
	}
	t.Fatalf("error %q does not start with an option and its value", msg)
}

// checkBounded asserts that parsed options hold no value that could hang,
// overflow or panic a response: every count is positive, every duration and
// rate finite and not negative.
func checkBounded(t *testing.T, o options) {
	t.Helper()
	c := conditions(o)
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case o.chunk.N < 1 || o.chunk.N > pacing.MaxChunk:
		t.Fatalf("chunk %d", o.chunk.N)
	case o.interval < 0 || o.latency < 0 || o.maxDuration < 0:
		t.Fatalf("negative duration: interval %v, latency %v, max_duration %v", o.interval, o.latency, o.maxDuration)
	case !finite(o.rate) || o.rate < 0 || o.rate > pacing.MaxRate || !finite(o.uploadRate) || o.uploadRate < 0 || o.uploadRate > pacing.MaxRate:
		t.Fatalf("rate %v, upload_rate %v", o.rate, o.uploadRate)
	case !finite(c.Down) || c.Down < 0 || c.Down > pacing.MaxRate || !finite(c.Up) || c.Up < 0 || c.Up > pacing.MaxRate:
		t.Fatalf("a network's rate %v, upload_rate %v", c.Down, c.Up)
	case !finite(o.jitter) || o.jitter < 0 || o.jitter > 1:
		t.Fatalf("jitter %v", o.jitter)
	case !finite(o.percent) || o.percent < 0 || o.percent > 100:
		t.Fatalf("percent %v", o.percent)
	case o.after < 0:
		t.Fatalf("after %d", o.after)
	case c.RTT < 0 || c.Latency < 0:
		t.Fatalf("rtt %v, a network's latency %v", c.RTT, c.Latency)
	case !finite(c.Loss) || c.Loss < 0 || c.Loss >= 1 || !finite(c.LossBurst) || c.LossBurst != 0 && (c.LossBurst < 1 || c.LossBurst > 1000):
		t.Fatalf("loss %v, burst %v", c.Loss, c.LossBurst)
	case c.Outage < 0 || c.OutageEvery < 0 || c.Outage > 0 && c.Outage >= c.OutageEvery:
		t.Fatalf("outage %v every %v", c.Outage, c.OutageEvery)
	case o.net != nil && (!finite(o.net.reset) || o.net.reset < 0 || o.net.reset > 1):
		t.Fatalf("reset %v", o.net.reset)
	}
}
