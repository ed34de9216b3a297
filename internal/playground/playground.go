// Package playground serves Strata's GraphQL Playground: GraphiQL built from pinned npm packages
// (web/playground, `make playground`) into dist/ and embedded in the binary, so that it works on
// a machine without internet. gqlgen's own playground handler loads its scripts from a public
// CDN and shows a blank page there.
package playground

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetPrefix is the path under which the page's script and stylesheet are served. The page
// itself is at "/".
const AssetPrefix = "/playground/"

// contentSecurityPolicy lets the page load and talk to nothing but its own origin. GraphiQL's
// stylesheet inlines its fonts and icons as data: URLs. connect-src 'self' also covers the
// subscriptions' WebSocket to ws://<host>/query (wss: behind https): CSP Level 3 matches
// 'self' against ws: and wss: on the page's own host and port; the browser test in
// internal/app opens one under this policy.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed all:dist
var dist embed.FS

//go:embed examples.graphql
var examples string

// Examples returns the example operations the Playground opens with: one GraphQL document
// holding every tab's operation (examples.graphql explains its format).
func Examples() string { return examples }

// Handler serves the Playground's page at "/" and its assets under AssetPrefix; any other path
// is not found. Before the assets are built it answers 503, saying how to build them.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return handler{files: files, modTime: time.Now()}
}

type handler struct {
	files fs.FS
	// modTime stands in for the files' times, which embed does not keep, so that a browser
	// revalidates after the server restarts with other assets.
	modTime time.Time
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var name string
	switch {
	case r.URL.Path == "/":
		name = "index.html"
	case strings.HasPrefix(r.URL.Path, AssetPrefix):
		name = strings.TrimPrefix(r.URL.Path, AssetPrefix)
		if name == "index.html" || name == "README.md" || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	body, err := fs.ReadFile(h.files, name)
	if err != nil {
		if name == "index.html" {
			http.Error(w, "the Playground's assets are not built into this binary: run `make playground` and build again",
				http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
		return
	}
	if ctype := mime.TypeByExtension(path.Ext(name)); ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, h.modTime, bytes.NewReader(body))
}
