package explorer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// operation finds the Explorer's operations in its built script: each is a string or a
// template literal whose text starts with "query Explorer" or "subscription Explorer" (every
// operation the Explorer sends is named so: web/explorer/src).
var operation = regexp.MustCompile("\"(?:query|subscription) Explorer(?:[^\"\\\\]|\\\\.)*\"|`(?:query|subscription) Explorer[^`]*`")

// kindPlaceholder is the one interpolation an operation's template may hold, right after
// "Explorer": the aggregate kind's name (aggregate.js's name(kind)).
var kindPlaceholder = regexp.MustCompile(`(?s)^((?:query|subscription) Explorer)\$\{[A-Za-z_$][\w$]*\([A-Za-z_$][\w$]*\)\}(.*)$`)

// Documents lists the exact text of every operation the Explorer sends, read from the script
// embedded in the binary: its fixed operations, and for each aggregate kind named in kinds
// (the API's aggregateKinds) the operations built from the kind's name. With trusted documents
// (--trusted-documents) the server allows these besides the listed ones, so the Explorer keeps
// working. It fails when the script holds no operation or one it cannot read, rather than let
// the Explorer break silently.
func Documents(kinds []string) ([]string, error) {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return documentsIn(files, kinds)
}

func documentsIn(files fs.FS, kinds []string) ([]string, error) {
	script, err := fs.ReadFile(files, "app.js")
	if err != nil {
		return nil, fmt.Errorf("the Explorer's script: %w", err)
	}
	var docs []string
	for _, lit := range operation.FindAllString(string(script), -1) {
		if lit[0] == '"' {
			var s string
			if err := json.Unmarshal([]byte(lit), &s); err != nil {
				return nil, fmt.Errorf("the Explorer's operation %.60s: %w", lit, err)
			}
			docs = append(docs, s)
			continue
		}
		text := lit[1 : len(lit)-1]
		if strings.Contains(text, `\`) {
			return nil, fmt.Errorf("the Explorer's operation %.60s has an escape, which this reader does not decode", text)
		}
		if !strings.Contains(text, "${") {
			docs = append(docs, text)
			continue
		}
		m := kindPlaceholder.FindStringSubmatch(text)
		if m == nil || strings.Contains(m[2], "${") {
			return nil, fmt.Errorf("the Explorer's operation %.60s interpolates something other than the kind's name", text)
		}
		for _, k := range kinds {
			docs = append(docs, m[1]+kindName(k)+m[2])
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("the Explorer's script holds no operation: is it built (make explorer)?")
	}
	return docs, nil
}

// kindName is a kind's name as part of an operation name, as aggregate.js's name(kind) makes it.
func kindName(name string) string {
	var b strings.Builder
	for _, c := range name {
		if c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "Aggregate"
	}
	return b.String()
}
