package main

import (
	"os"
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
