package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// TrustedDocuments reads --trusted-documents: a JSON object of sha256 hex of a document → the
// document, the form graphql-codegen's client preset writes as persisted documents. Each key
// must be the sha256 of its document's text and each document must parse; the error names the
// file and the first entry at fault. nil, nil when the flag is not set.
func (c *Config) TrustedDocuments() (map[string]string, error) {
	if c.TrustedDocumentsFile == "" {
		return nil, nil
	}
	fail := func(format string, args ...any) (map[string]string, error) {
		return nil, fmt.Errorf("--trusted-documents %s: "+format, append([]any{c.TrustedDocumentsFile}, args...)...)
	}
	raw, err := os.ReadFile(c.TrustedDocumentsFile)
	if err != nil {
		return fail("%v", err)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail(`must be a JSON object: {"<sha256 hex of the document>": "<document>", ...}`)
	}
	var docs map[string]string
	if err := json.Unmarshal(raw, &docs); err != nil {
		return fail(`must be a JSON object of strings: {"<sha256 hex of the document>": "<document>", ...}: %v`, err)
	}
	if len(docs) == 0 {
		return fail("lists no document: the server would run none")
	}
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sum := sha256.Sum256([]byte(docs[k]))
		if hex.EncodeToString(sum[:]) != k {
			return fail("the key %q is not the sha256 (lowercase hex) of its document, %s", k, hex.EncodeToString(sum[:]))
		}
		if _, err := parser.ParseQuery(&ast.Source{Input: docs[k]}); err != nil {
			return fail("the document under %s does not parse: %v", k, err)
		}
	}
	return docs, nil
}
