// Package explorer serves Strata's Explorer at /explorer: a page for looking into the event
// store (streams, an aggregate through its versions, a live tail, statistics) through the
// public GraphQL API only. It is built from web/explorer (`make explorer`) into dist/, which is
// committed and embedded in the binary, so it works on a machine without internet and a plain
// `go build` includes it.
package explorer

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/strata-es/strata/internal/transport/webpage"
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
// found. Should the assets be missing from dist/ (they are committed, so only a tree that lost
// them builds such a binary), it answers 503, saying how to build them.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return handlerFor(files)
}

// handlerFor serves files as the page.
func handlerFor(files fs.FS) http.Handler {
	return webpage.Handler(webpage.Page{
		Files: files, Path: Path, AssetPrefix: AssetPrefix, CSP: contentSecurityPolicy,
		Missing: "the Explorer's assets are not built into this binary: run `make explorer` and build again",
	})
}
