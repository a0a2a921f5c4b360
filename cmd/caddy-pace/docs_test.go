package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markdownLink matches the target of an inline link or image, a reference
// definition, or an HTML href or src.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)[^)]*\)|(?m)^\s*\[[^\]]+\]:\s*(\S+)|(?:href|src)="([^"]+)"`)

// TestDocsLinkOnlyInsideTheRepository checks every Markdown file of the
// repository: each link is to a heading of the same page, or to a file of
// the repository. The README and its neighbours are the whole reference; a
// link that leaves the repository breaks in a clone or a release archive.
func TestDocsLinkOnlyInsideTheRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "artifacts" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".md") {
			docs = append(docs, path)
		}
		return nil
	})
	if len(docs) < 2 {
		t.Fatalf("found %d Markdown files under %s", len(docs), root)
	}
	links := 0
	for _, doc := range docs {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, doc)
		anchors := headingAnchors(string(src))
		for _, m := range markdownLink.FindAllStringSubmatch(string(src), -1) {
			target := m[1] + m[2] + m[3]
			links++
			path, fragment, _ := strings.Cut(target, "#")
			switch {
			case strings.Contains(target, "://") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, "mailto:"):
				t.Errorf("%s links outside the repository: %s", name, target)
			case path == "":
				if !anchors[fragment] {
					t.Errorf("%s links to #%s, which is no heading of it", name, fragment)
				}
			default:
				abs := filepath.Join(filepath.Dir(doc), path)
				if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s links outside the repository: %s", name, target)
				} else if _, err := os.Stat(abs); err != nil {
					t.Errorf("%s links to %s, which does not exist", name, target)
				}
			}
		}
	}
	t.Logf("%d links in %d Markdown files, each to a heading or a file of the repository", links, len(docs))
}

// headingAnchors returns the anchors GitHub makes for a page's headings:
// lower case, spaces to hyphens, punctuation dropped.
func headingAnchors(src string) map[string]bool {
	anchors := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range title {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// docBlock returns the fenced js block of the Markdown file doc (from the
// repository's root) whose first line is first.
func docBlock(t *testing.T, doc, first string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../..", doc))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "```js\n"+first+"\n")
	if !ok {
		t.Fatalf("%s has no js block that starts %q", doc, first)
	}
	block, _, _ := strings.Cut(rest, "```")
	return first + "\n" + block
}

// TestTheREADMEIsTheFrontDoor checks that the README opens with its two
// commands, the demo and the tests, stays short, and leads to every page of
// docs/.
func TestTheREADMEIsTheFrontDoor(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(string(readme), 2)
	if len(blocks) < 2 || !strings.HasPrefix(blocks[0][1], "go run ./cmd/caddy-pace run --config ") || blocks[1][1] != "go test -race ./...\n" {
		t.Errorf("the README's first two code blocks are %q, want the demo and the tests", blocks)
	}
	if lines := strings.Count(string(readme), "\n"); lines > 260 {
		t.Errorf("the README has %d lines; the reference belongs in docs/", lines)
	}
	pages, _ := filepath.Glob("../../docs/*.md")
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	for _, page := range pages {
		if link := "](docs/" + filepath.Base(page) + ")"; !strings.Contains(string(readme), link) {
			t.Errorf("the README does not link to docs/%s", filepath.Base(page))
		}
	}
}

func TestTheAdminAPIPagesNodeHelperChangesANetwork(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no node; CI installs it and must run this test")
		}
		t.Skip("SKIP: no node on this machine (apt-get install nodejs); CI installs it and never skips this test")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pace-network.mjs"), []byte(docBlock(t, "docs/admin-api.md", "// pace-network.mjs")), 0o644)
	// As a test's Node side would use it: offline, a bad change, back.
	os.WriteFile(filepath.Join(dir, "drive.mjs"), []byte(`
import { network, restore } from "./pace-network.mjs";
const off = await network("default", { preset: "offline" });
console.log("changed:", JSON.stringify(off.changed));
try {
	await network("default", { preset: "6g" });
	console.log("a bad change was taken");
} catch (e) {
	console.log("refused:", e.message);
}
await restore("default");
console.log("restored");
`), 0o644)

	bin := caddyPace(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	addr, admin := freePort(t), freePort(t)
	out := start(t, bin, addr, "pace", "--to", up.Listener.Addr().String(), "--preset", "slow-4g", "--listen", addr, "--admin", admin)
	waitFor(t, admin, out)
	cmd := exec.Command(node, "drive.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PACE_ADMIN=http://"+admin)
	got, err := cmd.CombinedOutput()
	t.Logf("node drive.mjs:\n%s", got)
	want := `changed: {"preset":"offline"}
refused: pace: 400 {"error":"network \"default\": preset \"6g\": unknown preset (want 3g, slow-3g, slow-4g, fast-3g, fast-4g or offline)"}
restored
`
	if err != nil || strings.ReplaceAll(string(got), "\n\n", "\n") != want { // Caddy ends its error with a newline
		t.Errorf("node drive.mjs: %v\n%s\nwant\n%s", err, got, want)
	}
}
