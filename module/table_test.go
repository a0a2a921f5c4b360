package pace

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// The option table (optionTable) is the one description of an option:
// adding a row is the one step to add one. These tests hold every other
// place an option shows against it.

func TestTheCaddyfileTakesEachOptionsArgumentsFromTheTable(t *testing.T) {
	for _, opt := range optionTable {
		if opt.args < 1 || opt.what == "" || opt.help == "" || strings.Contains(opt.help, "\n") {
			t.Errorf("%s: %d arguments, what %q, help %q: want at least one argument, what they are and one line of help", opt.name, opt.args, opt.what, opt.help)
		}
		for _, args := range []int{0, opt.args + 1} {
			block := "pace {\n " + opt.name + strings.Repeat(" 1", args) + "\n}"
			_, err := adaptPace(t, block)
			want := opt.name + " takes " + opt.what + ", got " + strconv.Itoa(args) + " arguments"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, want an error saying %q", block, err, want)
			}
		}
	}
}

func TestEachOptionIsTheJSONFieldOfItsName(t *testing.T) {
	for _, opt := range optionTable {
		var h Handler
		*opt.field(&h) = "x"
		b, err := json.Marshal(h)
		var fields map[string]any
		json.Unmarshal(b, &fields)
		if err != nil || len(fields) != 1 || fields[opt.name] != "x" {
			t.Errorf("%s set: JSON %s, want {%q: \"x\"}", opt.name, b, opt.name)
		}
	}
}

func TestTheQuickCommandHasAFlagForEachOption(t *testing.T) {
	pace := caddycmd.Commands()["pace"]
	cmd := &cobra.Command{}
	pace.CobraFunc(cmd)
	var got []string
	for _, f := range []string{"to", "root", "listen", "admin"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("no --%s", f)
		}
	}
	for _, opt := range optionTable {
		f := cmd.Flags().Lookup(strings.ReplaceAll(opt.name, "_", "-"))
		switch {
		case opt.is(noFlag) && f != nil:
			t.Errorf("--%s: %s has no flag", f.Name, opt.name)
		case !opt.is(noFlag) && (f == nil || f.Usage != opt.help):
			t.Errorf("%s: flag %+v, want --%s with the option's help", opt.name, f, strings.ReplaceAll(opt.name, "_", "-"))
		}
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { got = append(got, f.Name) })
	if want := len(flagOptions()) + 4; len(got) != want {
		t.Errorf("flags %v: %d, want the %d options' and --to, --root, --listen, --admin", got, len(got), want)
	}
	for _, opt := range flagOptions() {
		if !strings.Contains(pace.Long, "--"+flagName(opt)) {
			t.Errorf("the command's help does not list --%s", flagName(opt))
		}
	}
}

func TestALiveChangeTakesTheOptionsTheTableSays(t *testing.T) {
	h := &Handler{Preset: "slow-4g", Name: "table"}
	o, err := h.parse(staticValue)
	if err != nil {
		t.Fatal(err)
	}
	h.static, h.links = &o, pacing.NewLinks(10)
	n := registerNamed(h)
	defer releaseNamed(n, h)
	for _, opt := range optionTable {
		err := n.change(optionValues{opt.name: "¿"}, time.Now())
		refused := err != nil && strings.Contains(err.Error(), "not an option a live change can set")
		switch {
		case opt.is(notLive) && !refused:
			t.Errorf("a change of %s: %v, want it refused as not live", opt.name, err)
		case !opt.is(notLive) && (err == nil || refused || !strings.HasPrefix(err.Error(), opt.name+` "¿"`)):
			t.Errorf("a change of %s to ¿: %v, want the option's own error", opt.name, err)
		}
		if !opt.is(notLive) && !strings.Contains(liveOptions(), opt.name) {
			t.Errorf("the live options %q do not list %s", liveOptions(), opt.name)
		}
	}
}

// syntaxLine matches a subdirective of the syntax in UnmarshalCaddyfile's
// doc comment.
var syntaxLine = regexp.MustCompile(`(?m)^//\t\t([a-z_]+) `)

func TestTheCaddyfileSyntaxListsEveryOption(t *testing.T) {
	src, err := os.ReadFile("caddyfile.go")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range syntaxLine.FindAllStringSubmatch(string(src), -1) {
		listed = append(listed, m[1])
	}
	var want []string
	for _, opt := range optionTable {
		if opt.name != "upload_trace" { // trace's second file
			want = append(want, opt.name)
		}
	}
	want = append(want, "match")
	if !slices.Equal(listed, want) {
		t.Errorf("the syntax lists %v\nwant the table's %v", listed, want)
	}
}
