package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/transport/explorer"
	"github.com/strata-es/strata/internal/transport/playground"
)

// The binary is the whole product: one built with a plain `go build` of cmd/strata (what
// `go install github.com/strata-es/strata/cmd/strata@version` runs; no make, no npm) serves the
// Playground at / and the Explorer at /explorer, each page and asset byte for byte the file in
// its dist folder, where the built assets are committed, rather than the 503 a binary without
// them gives.
func TestPlainGoBuildServesThePlaygroundAndTheExplorer(t *testing.T) {
	bin := buildStrata(t)
	url := dbtest.URL(t)
	verifyNoLeaks(t)
	client, env, serverLog := childHarness(t)
	cfg := config.Config{DBMaxConns: 4, LogLevel: slog.LevelWarn, LogFormat: "text"}
	srv, err := serveproc.Start(t.Context(), env.Stderr, cfg, bin, url)
	if err != nil {
		t.Fatalf("%v; server log:\n%s", err, serverLog)
	}
	t.Cleanup(srv.Stop)

	for _, page := range []struct {
		name, path, assetPrefix, dist, title string
	}{
		{"Playground", "/", playground.AssetPrefix, "../transport/playground/dist", "<title>Strata Playground</title>"},
		{"Explorer", explorer.Path, explorer.AssetPrefix, "../transport/explorer/dist", "<title>Strata Explorer</title>"},
	} {
		status, ctype, body := getBody(t, client, "http://"+srv.Addr+page.path)
		if status != http.StatusOK || ctype != "text/html; charset=utf-8" || !bytes.Contains(body, []byte(page.title)) {
			t.Errorf("GET %s = %d, %s, %.200q; want 200 and the %s's page (%s)", page.path, status, ctype, body, page.name, page.title)
			continue
		}
		// Every built file in the dist folder, served byte for byte as committed.
		entries, err := os.ReadDir(page.dist)
		if err != nil {
			t.Fatal(err)
		}
		var built []string
		for _, e := range entries {
			if e.Name() == "README.md" {
				continue
			}
			built = append(built, e.Name())
			want, err := os.ReadFile(filepath.Join(page.dist, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			path := page.assetPrefix + e.Name()
			if e.Name() == "index.html" {
				path = page.path
			}
			status, _, body := getBody(t, client, "http://"+srv.Addr+path)
			if status != http.StatusOK {
				t.Errorf("GET %s = %d %.200q, want 200 and %s/%s", path, status, body, page.dist, e.Name())
			} else if !bytes.Equal(body, want) {
				t.Errorf("GET %s: %d bytes that differ from %s/%s (%d bytes)", path, len(body), page.dist, e.Name(), len(want))
			}
		}
		for _, name := range []string{"index.html", "app.js", "app.css"} {
			if !slices.Contains(built, name) {
				t.Errorf("%s has no %s (it holds %v besides its README)", page.dist, name, built)
			}
		}
	}
}

// getBody fetches url and returns the status, the Content-Type and the body.
func getBody(t *testing.T, client *http.Client, url string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, client, req)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}
