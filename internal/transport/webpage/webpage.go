// Package webpage serves a single page built into the binary (the Playground, the Explorer):
// the page at one path, its assets under a prefix, nothing else, each answer with the page's
// Content-Security-Policy.
package webpage

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Page describes one built page.
type Page struct {
	Files       fs.FS  // the built files: index.html and its assets
	Path        string // where index.html is served
	AssetPrefix string // where the other files are served, ending in "/"
	CSP         string // the Content-Security-Policy of every answer
	// Missing is the 503 answer's text when index.html is not built into the binary.
	Missing string
}

// Handler serves p. It is built once; the files' time is the time it was built, which embed
// does not keep otherwise, so that a browser revalidates after a restart with other assets.
func Handler(p Page) http.Handler {
	return handler{page: p, modTime: time.Now()}
}

type handler struct {
	page    Page
	modTime time.Time
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var name string
	switch {
	case r.URL.Path == h.page.Path:
		name = "index.html"
	case strings.HasPrefix(r.URL.Path, h.page.AssetPrefix):
		name = strings.TrimPrefix(r.URL.Path, h.page.AssetPrefix)
		if name == "index.html" || name == "README.md" || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	body, err := fs.ReadFile(h.page.Files, name)
	if err != nil {
		if name == "index.html" {
			http.Error(w, h.page.Missing, http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
		return
	}
	if ctype := mime.TypeByExtension(path.Ext(name)); ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("Content-Security-Policy", h.page.CSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, h.modTime, bytes.NewReader(body))
}
