package playground

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
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
	if resp, body := serve(t, h, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d %q: the Playground's assets are missing from dist/; restore them from git or run `make playground`", resp.StatusCode, body)
	}
	return h
}

func TestServesPageAndAssetsWithTheirTypesAndPolicy(t *testing.T) {
	t.Parallel()
	h := builtHandler(t)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<div id="playground">`},
		{AssetPrefix + "app.js", "text/javascript; charset=utf-8", "graphiql"},
		{AssetPrefix + "app.css", "text/css; charset=utf-8", ".graphiql-container"},
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
		"/index.html", "/app.js", "/elsewhere", AssetPrefix, AssetPrefix + "nope.js",
		AssetPrefix + "index.html", AssetPrefix + "README.md", AssetPrefix + "../playground.go",
	} {
		if resp, _ := serve(t, h, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// The browser test (internal/app) sees what one page load fetches; this looks at everything
// the page could fetch: the page's own references and every url() of the stylesheet.
func TestPageReferencesNothingOutsideItsOrigin(t *testing.T) {
	t.Parallel()
	h := builtHandler(t)
	_, page := serve(t, h, "/")
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
	if own < 2 {
		t.Errorf("index.html references %d files under %s, want the script and the stylesheet:\n%s", own, AssetPrefix, page)
	}
	_, css := serve(t, h, AssetPrefix+"app.css")
	if strings.Contains(css, "@import") {
		t.Errorf("app.css has an @import; everything must be bundled")
	}
	urls := regexp.MustCompile(`url\(\s*["']?([^"')]*)`).FindAllStringSubmatch(css, -1)
	if len(urls) == 0 {
		t.Fatalf("app.css has no url(): GraphiQL's fonts and icons are expected inlined")
	}
	for _, u := range urls {
		if !strings.HasPrefix(u[1], "data:") && !strings.HasPrefix(u[1], "#") {
			t.Errorf("app.css loads %.80q, want only data: URLs", u[1])
		}
	}
}

func TestWithoutBuiltAssetsAnswers503SayingHowToBuild(t *testing.T) {
	t.Parallel()
	h := handlerFor(fstest.MapFS{"README.md": {Data: []byte("placeholder")}})
	resp, body := serve(t, h, "/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET / without assets = %d, want 503", resp.StatusCode)
	}
	if !strings.Contains(body, "make playground") {
		t.Errorf("GET / without assets says %q, want it to name `make playground`", body)
	}
	if resp, _ := serve(t, h, AssetPrefix+"app.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %sapp.js without assets = %d, want 404", AssetPrefix, resp.StatusCode)
	}
}

func TestExamplesAreOneDocumentOfNamedOperations(t *testing.T) {
	t.Parallel()
	doc, err := parser.ParseQuery(&ast.Source{Name: "examples.graphql", Input: Examples()})
	if err != nil {
		t.Fatalf("examples.graphql does not parse: %v", err)
	}
	var names []string
	for _, op := range doc.Operations {
		names = append(names, op.Name)
	}
	want := []string{"RegisterUser", "CreateOrder", "PayOrder", "OrderHistory", "AllEvents", "LiveEvents"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("examples.graphql has operations %v, want %v", names, want)
	}
	if tabs := strings.Count(Examples(), "\n### "); tabs != len(want) {
		t.Errorf("examples.graphql has %d tabs (lines starting \"### \"), want one per operation: %d", tabs, len(want))
	}
}
