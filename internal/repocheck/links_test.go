package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// [text](target) and ![alt](target); the target ends at a space (a
	// title may follow) or the closing parenthesis.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink   = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	fence     = regexp.MustCompile("(?ms)^\\s*(```|~~~).*?^\\s*(```|~~~)")
	codeSpan  = regexp.MustCompile("`[^`\n]*`")
	uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// markdownLinks returns the link targets of a Markdown document outside
// code blocks and code spans.
func markdownLinks(doc string) []string {
	doc = fence.ReplaceAllString(doc, "")
	doc = codeSpan.ReplaceAllString(doc, "")
	var targets []string
	for _, m := range inlineLink.FindAllStringSubmatch(doc, -1) {
		targets = append(targets, m[1])
	}
	for _, m := range refLink.FindAllStringSubmatch(doc, -1) {
		targets = append(targets, m[1])
	}
	return targets
}

// A relative link in a Markdown file must name a file or folder of the
// repository: the repository stands alone, so no link may leave it (a
// team folder next to the clone, say) and none may point at a file that
// was renamed or never added. Anchors are not checked.
func TestMarkdownLinksResolveInsideTheRepository(t *testing.T) {
	top := root(t)
	files := trackedFiles(t, top, ".md")
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	checked := 0
	for _, f := range files {
		doc, err := os.ReadFile(filepath.Join(top, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range markdownLinks(string(doc)) {
			if uriScheme.MatchString(target) || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "//") {
				continue // a URL or an anchor in the same document
			}
			checked++
			if problem := resolve(top, f, target); problem != "" {
				t.Errorf("%s: link %q %s", f, target, problem)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link pattern is broken")
	}
}

// resolve says what is wrong with a relative link target of file f, or "".
func resolve(top, f, target string) string {
	path, _, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	if path == "" {
		return ""
	}
	var abs string
	if strings.HasPrefix(path, "/") { // relative to the repository's top, as on GitHub
		abs = filepath.Join(top, filepath.FromSlash(path))
	} else {
		abs = filepath.Join(top, filepath.Dir(filepath.FromSlash(f)), filepath.FromSlash(path))
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "points outside the repository"
	}
	if _, err := os.Stat(abs); err != nil {
		return "names no file of the repository"
	}
	return ""
}

func TestMarkdownLinksPattern(t *testing.T) {
	doc := "See [the contract](docs/contract.md#exit-codes) and ![graph](img/a.png \"title\").\n" +
		"[ref]: ../shared/CONTRACT.md\n" +
		"Not this: `[x](nowhere.md)`\n```\n[y](nowhere.md)\n```\n" +
		"[web](https://example.com) [here](#top)\n"
	got := strings.Join(markdownLinks(doc), " ")
	if want := "docs/contract.md#exit-codes img/a.png https://example.com #top ../shared/CONTRACT.md"; got != want {
		t.Fatalf("links %q, want %q", got, want)
	}
	top := t.TempDir()
	if err := os.MkdirAll(filepath.Join(top, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "docs", "contract.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, target string
		ok           bool
	}{
		{"README.md", "docs/contract.md", true},
		{"README.md", "docs/contract.md#exit-codes", true},
		{"README.md", "docs", true},
		{"docs/a.md", "contract.md", true},
		{"docs/a.md", "../docs/contract.md", true},
		{"README.md", "/docs/contract.md", true},
		{"README.md", "../shared/CONTRACT.md", false},
		{"README.md", "docs/missing.md", false},
		{"docs/a.md", "../../x.md", false},
	} {
		if got := resolve(top, tt.file, tt.target) == ""; got != tt.ok {
			t.Errorf("resolve(%s, %s) ok = %v, want %v", tt.file, tt.target, got, tt.ok)
		}
	}
}
