package explorer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// serve answers one GET of path with h and returns the response and its body.
func serve(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// builtHandler is Handler after a check that the assets are embedded: they are committed in
// dist/, so only a tree that lost them fails here.
func builtHandler(t *testing.T) http.Handler {
	t.Helper()
	h := Handler()
	if resp, body := serve(t, h, Path); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %q: the Explorer's assets are missing from dist/; restore them from git or run `make explorer`", Path, resp.StatusCode, body)
	}
	return h
}

func TestServesPageAndAssetsWithTheirTypesAndPolicy(t *testing.T) {
	t.Parallel()
	h := builtHandler(t)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{Path, "text/html; charset=utf-8", `<title>Strata Explorer</title>`},
		{AssetPrefix + "app.js", "text/javascript; charset=utf-8", "ExplorerStreams"},
		{AssetPrefix + "app.css", "text/css; charset=utf-8", "focus-visible"},
	} {
		resp, body := serve(t, h, tc.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tc.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", tc.path, got, contentSecurityPolicy)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body does not contain %q", tc.path, tc.contains)
		}
	}
}

func TestUnknownPathsAreNotFound(t *testing.T) {
	t.Parallel()
	h := builtHandler(t)
	for _, path := range []string{
		"/", Path + "/", Path + "/index.html", "/app.js", AssetPrefix, AssetPrefix + "nope.js",
		AssetPrefix + "index.html", AssetPrefix + "README.md", AssetPrefix + "../explorer.go",
	} {
		if resp, _ := serve(t, h, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// The browser test (internal/app) sees what the page fetches as it is used; this looks at
// everything it could fetch: the page's own references and any url() of its stylesheet.
func TestPageReferencesNothingOutsideItsOrigin(t *testing.T) {
	t.Parallel()
	h := builtHandler(t)
	_, page := serve(t, h, Path)
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	own := 0
	for _, ref := range refs {
		switch {
		case strings.HasPrefix(ref[1], AssetPrefix):
			own++
		case strings.HasPrefix(ref[1], "data:"): // the empty favicon, which spares a request
		default:
			t.Errorf("index.html references %q, want a path under %s or a data: URL", ref[1], AssetPrefix)
		}
	}
	if own != 2 {
		t.Errorf("index.html references %d files under %s, want the script and the stylesheet:\n%s", own, AssetPrefix, page)
	}
	_, css := serve(t, h, AssetPrefix+"app.css")
	if strings.Contains(css, "@import") || strings.Contains(css, "@font-face") {
		t.Errorf("app.css imports a stylesheet or a font; the page uses system fonts and one stylesheet")
	}
	for _, u := range regexp.MustCompile(`url\(\s*["']?([^"')]*)`).FindAllStringSubmatch(css, -1) {
		if !strings.HasPrefix(u[1], "data:") && !strings.HasPrefix(u[1], "#") {
			t.Errorf("app.css loads %.80q, want only data: URLs", u[1])
		}
	}
	_, js := serve(t, h, AssetPrefix+"app.js")
	for _, u := range regexp.MustCompile(`(?:https?|wss?)://[a-zA-Z0-9.-]+`).FindAllString(js, -1) {
		if u != "http://www.w3.org" { // the SVG namespace, a name and no request
			t.Errorf("app.js names %q; the page talks to its own origin only", u)
		}
	}
}

func TestWithoutBuiltAssetsAnswers503SayingHowToBuild(t *testing.T) {
	t.Parallel()
	h := handlerFor(fstest.MapFS{"README.md": {Data: []byte("placeholder")}})
	resp, body := serve(t, h, Path)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s without assets = %d, want 503", Path, resp.StatusCode)
	}
	if !strings.Contains(body, "make explorer") {
		t.Errorf("GET %s without assets says %q, want it to name `make explorer`", Path, body)
	}
	if resp, _ := serve(t, h, AssetPrefix+"app.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %sapp.js without assets = %d, want 404", AssetPrefix, resp.StatusCode)
	}
}

// Every GraphQL operation in the page's source is valid against schema.graphql: the browser
// test runs most of them, this also covers those it does not reach (the user view, "as of").
func TestThePagesOperationsAreValidAgainstTheSchema(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "graph", "schema", "*.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []*ast.Source
	for _, f := range append([]string{filepath.Join("..", "..", "..", "schema.graphql")}, files...) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, &ast.Source{Name: filepath.Base(f), Input: string(text)})
	}
	schema, gerr := gqlparser.LoadSchema(inputs...)
	if gerr != nil {
		t.Fatalf("the schema: %v", gerr)
	}
	// An operation whose name is made per aggregate kind (Explorer${name(kind)}AtVersion) is
	// checked with a kind's name in its place.
	kindName := regexp.MustCompile(`\$\{[^}]*\}`)
	sources, err := filepath.Glob(filepath.Join("..", "..", "..", "web", "explorer", "src", "*.js"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no sources under web/explorer/src: %v", err)
	}
	operation := regexp.MustCompile("`((?:query|subscription|mutation) [^`]*)`")
	var names []string
	for _, file := range sources {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range operation.FindAllStringSubmatch(string(src), -1) {
			doc, errs := gqlparser.LoadQueryWithRules(schema, kindName.ReplaceAllString(m[1], "Product"), nil) // nil: the default rules
			if len(errs) > 0 {
				t.Errorf("%s: %.60q… is not valid: %v", filepath.Base(file), m[1], errs)
				continue
			}
			for _, op := range doc.Operations {
				names = append(names, op.Name)
			}
		}
	}
	want := []string{"ExplorerProductAtVersion", "ExplorerProductAsOf",
		"ExplorerLive", "ExplorerProjections", "ExplorerEventStats", "ExplorerStreams", "ExplorerStream", "ExplorerStreamLast", "ExplorerVersions"}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("no valid operation %s in the page's source; found %v", w, names)
		}
	}
}
