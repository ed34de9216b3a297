// Package explorer serves Strata's Explorer at /explorer: a page for looking into the event
// store (streams, an aggregate through its versions, a live tail, statistics) through the
// public GraphQL API only. It is built from web/explorer (`make explorer`) into dist/ and
// embedded in the binary, so it works on a machine without internet.
package explorer

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

// Path is where the page is served.
const Path = "/explorer"

// AssetPrefix is the path under which the page's script and stylesheet are served.
const AssetPrefix = "/explorer/assets/"

// contentSecurityPolicy lets the page load and talk to nothing but its own origin: no inline
// script or style (the page builds its elements with the DOM API), no fonts, images only as
// data: URLs (its favicon). connect-src 'self' covers POST /query and the live tail's
// WebSocket to ws(s)://<host>/query (CSP Level 3 matches 'self' against ws: and wss: on the
// page's own host and port).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed all:dist
var dist embed.FS

// Handler serves the page at Path and its assets under AssetPrefix; any other path is not
// found. Before the assets are built it answers 503, saying how to build them.
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
	case r.URL.Path == Path:
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
			http.Error(w, "the Explorer's assets are not built into this binary: run `make explorer` and build again",
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
