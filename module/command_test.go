package pace

import (
	"encoding/json"
	"strings"
	"testing"
)

func commandValues(kv ...string) map[string]string {
	values := map[string]string{"listen": "localhost:8080"}
	for i := 0; i+1 < len(kv); i += 2 {
		values[kv[i]] = kv[i+1]
	}
	return values
}

func TestPaceCommandConfig(t *testing.T) {
	tests := []struct {
		values  map[string]string
		summary string
		route   string
	}{
		{commandValues("root", ".", "chunk", "5chars", "interval", "100ms"),
			"caddy pace: serving files from . at http://localhost:8080, pacing 5 chars every 100ms",
			`[{"chunk":"5chars","handler":"pace","interval":"100ms","match":{"headers":{"Etag":[]}}},{"browse":{},"handler":"file_server","root":"."}]`},
		{commandValues("to", "localhost:3000", "preset", "slow-4g"),
			"caddy pace: proxying to http://localhost:3000 at http://localhost:8080, pacing a slow-4g link per client: 150ms round trip, 1.6 Mbit/s down, 750 kbit/s up",
			`[{"handler":"pace","name":"default","preset":"slow-4g"},{"handler":"reverse_proxy","upstreams":[{"dial":"localhost:3000"}]}]`},
		{commandValues("to", "localhost:3000", "preset", "3g", "admin", ":2019"),
			"caddy pace: proxying to http://localhost:3000 at http://localhost:8080, pacing a 3g link per client: 400ms round trip, 500 kbit/s down, 500 kbit/s up\n" +
				"caddy pace: the admin API at http://localhost:2019 changes the network live:\n" +
				`  curl -X PATCH localhost:2019/pace/networks/default -d '{"preset":"offline"}'`,
			`[{"handler":"pace","name":"default","preset":"3g"},{"handler":"reverse_proxy","upstreams":[{"dial":"localhost:3000"}]}]`},
		{commandValues("root", ".", "admin", "localhost:2019"),
			"caddy pace: serving files from . at http://localhost:8080, pacing 1.0 KiB every 100ms\n" +
				"caddy pace: the admin API is at http://localhost:2019, with no network to change (give --preset or --rtt)",
			`[{"handler":"pace","match":{"headers":{"Etag":[]}}},{"browse":{},"handler":"file_server","root":"."}]`},
		{commandValues("to", "http://example.internal", "listen", ":9000"),
			"caddy pace: proxying to http://example.internal:80 at http://localhost:9000, pacing 1.0 KiB every 100ms",
			`[{"handler":"pace"},{"handler":"reverse_proxy","upstreams":[{"dial":"example.internal:80"}]}]`},
		{commandValues("to", "localhost:3000", "preset", "slow-4g", "share", "{cookie.pace_link}"),
			"caddy pace: proxying to http://localhost:3000 at http://localhost:8080, pacing a slow-4g link per {cookie.pace_link} (per client where it is empty): 150ms round trip, 1.6 Mbit/s down, 750 kbit/s up",
			`[{"handler":"pace","name":"default","preset":"slow-4g","share":"{http.request.cookie.pace_link}"},{"handler":"reverse_proxy","upstreams":[{"dial":"localhost:3000"}]}]`},
		{commandValues("root", ".", "rate", "1MB", "chunk", "1 line", "latency", "300ms", "content-type", "keep"),
			"caddy pace: serving files from . at http://localhost:8080, pacing 977 KiB/s in 1 line chunks, the head held 300ms",
			`[{"chunk":"1 line","content_type":"keep","handler":"pace","latency":"300ms","match":{"headers":{"Etag":[]}},"rate":"1MB"},{"browse":{},"handler":"file_server","root":"."}]`},
	}
	for _, tc := range tests {
		cfg, summary, err := paceCommandConfig(tc.values)
		if err != nil {
			t.Fatalf("%v: %v", tc.values, err)
		}
		if summary != tc.summary {
			t.Errorf("summary %q\nwant    %q", summary, tc.summary)
		}
		var http struct {
			Servers map[string]struct {
				Listen []string
				Routes []struct{ Handle json.RawMessage }
			}
		}
		json.Unmarshal(cfg.AppsRaw["http"], &http)
		if got := string(http.Servers["pace"].Routes[0].Handle); got != tc.route {
			t.Errorf("route %s\nwant  %s", got, tc.route)
		}
		if admin := tc.values["admin"]; cfg.Admin.Disabled != (admin == "") || admin != "" && cfg.Admin.Listen != admin {
			t.Errorf("--admin %q: admin %+v", admin, cfg.Admin)
		}
	}
}

func TestPaceCommandRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		values  map[string]string
		mention string
	}{
		{commandValues(), "give --to <upstream> to proxy, or --root <dir>"},
		{commandValues("to", "localhost:3000", "root", "."), `--to "localhost:3000" and --root ".": give one, not both`},
		{commandValues("root", "/no/such/dir"), `--root "/no/such/dir": not a directory`},
		{commandValues("to", "https://x:443"), `--to "https://x:443": want an http upstream`},
		{commandValues("root", ".", "listen", "8080"), `--listen "8080": not a host:port address`},
		{commandValues("root", ".", "admin", "2019"), `--admin "2019": not a host:port address`},
		{commandValues("root", ".", "chunk", "5furlongs"), `--chunk "5furlongs": unknown unit "furlongs"`},
		{commandValues("root", ".", "interval", "soon"), `--interval "soon": not a duration`},
		{commandValues("root", ".", "rate", "0"), `--rate "0": a rate must be above zero`},
		{commandValues("root", ".", "latency", "-1s"), `--latency "-1s": must not be negative`},
		{commandValues("root", ".", "preset", "6g"), `--preset "6g": unknown preset (want 3g,`},
		{commandValues("root", ".", "preset", "slow4g"), `--preset "slow4g": unknown preset (did you mean slow-4g?)`},
		{commandValues("root", ".", "content-type", "plain"), `--content-type "plain": not a media type`},
	} {
		_, _, err := paceCommandConfig(tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%v: error %v, want one saying %q", tc.values, err, tc.mention)
		}
	}
}
