package pace

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// optionRow matches a row of the options reference's table.
var optionRow = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")

func TestTheOptionsReferenceHasARowForEachOption(t *testing.T) {
	src, err := os.ReadFile("../docs/options.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(src), "## Every option")
	table, _, _ = strings.Cut(table, "\n## ")
	var rows []string
	for _, m := range optionRow.FindAllStringSubmatch(table, -1) {
		rows = append(rows, m[1])
	}
	var want []string
	for _, opt := range optionTable {
		want = append(want, opt.name)
	}
	want = append(want, "match")
	if !slices.Equal(rows, want) {
		t.Errorf("docs/options.md's table has rows %v\nwant the table's %v", rows, want)
	}
}
