package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Error codes of persisted queries.
const (
	// CodePersistedQueryNotFound: the request named a document by its hash alone, and the
	// server does not hold it; the message is PersistedQueryNotFound, which Apollo Client's
	// persisted-queries link answers by sending the query again with its hash.
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
	// CodePersistedQueryHashMismatch: the request sent a query and a sha256Hash that is not
	// the query's.
	CodePersistedQueryHashMismatch = "PERSISTED_QUERY_HASH_MISMATCH"
	// CodePersistedQueryNotAllowed: the server runs only trusted documents (--trusted-documents)
	// and the request's document is not one of them.
	CodePersistedQueryNotAllowed = "PERSISTED_QUERY_NOT_ALLOWED"
)

// PersistedQueryCacheSize is how many documents automatic persisted queries keep, the least
// recently used going first.
const PersistedQueryCacheSize = 1000

// persistedQueries resolves a request that names its document by sha256 (Apollo's automatic
// persisted queries: extensions.persistedQuery {version: 1, sha256Hash}, or a top-level
// documentId) into the document's text, before anything parses it: parsing, validation, the
// limits and the role check then see the text as if the client had sent it.
//
// Without trusted documents it is Apollo's protocol: a hash alone runs the document the cache
// holds under it, or answers PersistedQueryNotFound; a query with its hash runs and, once it
// has passed validation, the limits and the role check (persistedStore), is kept. With trusted
// documents only the listed ones run, however they are named; nothing is kept.
//
// gqlgen's extension.AutomaticPersistedQuery does the first part, but it keeps every query
// sent with a hash before it is parsed (a document that does not parse, or that no principal
// may run, takes a place in the cache), gives a mismatched hash no code, and knows neither
// documentId nor trusted documents.
type persistedQueries struct {
	cache   graphql.Cache[string] // automatic persisted queries; nil with trusted documents
	trusted map[string]string     // sha256 hex → document; nil without trusted documents
}

var (
	_ graphql.HandlerExtension          = persistedQueries{}
	_ graphql.OperationParameterMutator = persistedQueries{}
)

func newPersistedQueries(trusted map[string]string) persistedQueries {
	if trusted != nil {
		return persistedQueries{trusted: trusted}
	}
	return persistedQueries{cache: lru.New[string](PersistedQueryCacheSize)}
}

func (persistedQueries) ExtensionName() string                   { return "PersistedQueries" }
func (persistedQueries) Validate(graphql.ExecutableSchema) error { return nil }

// documentIDKey holds, in a request's context, the top-level documentId overHTTP read.
type documentIDKey struct{}

// persistedLogKey is the operation-context stats extension under which persistedQueries says
// how the document came, for the operation's log line (operations): "hash" (named by its hash
// alone) or "query+hash" (sent whole with its hash).
const persistedLogKey = "PersistedQuery"

// pendingHashKey is the operation-context stats extension under which persistedQueries leaves
// the hash of a query to keep once it has passed every check (persistedStore).
const pendingHashKey = "PersistedQueryPending"

func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	hash, named, err := requestedHash(ctx, params)
	if err != nil {
		return err
	}
	oc := graphql.GetOperationContext(ctx)
	if named && oc != nil {
		how := "hash"
		if params.Query != "" {
			how = "query+hash"
		}
		oc.Stats.SetExtension(persistedLogKey, how)
	}
	if p.trusted != nil {
		return p.trustedOnly(hash, named, params)
	}
	if !named {
		return nil
	}
	if params.Query == "" {
		q, ok := p.cache.Get(ctx, hash)
		if !ok {
			return codeError(CodePersistedQueryNotFound, "PersistedQueryNotFound")
		}
		params.Query = q
		return nil
	}
	if sha256Hex(params.Query) != hash {
		return codeError(CodePersistedQueryHashMismatch, "the query's sha256 is not the sha256Hash sent with it")
	}
	if oc != nil {
		oc.Stats.SetExtension(pendingHashKey, hash)
	}
	return nil
}

// trustedOnly lets a request run only a listed document: named by its hash (which must match
// the query, when one is sent too), or sent whole with no hash, when its text is listed.
func (p persistedQueries) trustedOnly(hash string, named bool, params *graphql.RawParams) *gqlerror.Error {
	notAllowed := func() *gqlerror.Error {
		return codeError(CodePersistedQueryNotAllowed, "this server runs only its trusted documents (--trusted-documents), and this document is not one of them")
	}
	if !named {
		if _, ok := p.trusted[sha256Hex(params.Query)]; !ok {
			return notAllowed()
		}
		return nil
	}
	doc, ok := p.trusted[hash]
	if !ok {
		return notAllowed()
	}
	if params.Query != "" && params.Query != doc {
		return codeError(CodePersistedQueryHashMismatch, "the query's sha256 is not the sha256Hash sent with it")
	}
	params.Query = doc
	return nil
}

// requestedHash reads the sha256 a request names its document by: extensions.persistedQuery's
// sha256Hash (version 1) or the top-level documentId (its hex, with or without a "sha256:"
// prefix). named is false when the request names none.
func requestedHash(ctx context.Context, params *graphql.RawParams) (hash string, named bool, _ *gqlerror.Error) {
	id, _ := ctx.Value(documentIDKey{}).(string)
	if raw, ok := params.Extensions["persistedQuery"]; ok {
		pq, ok := raw.(map[string]any)
		if !ok {
			return "", false, codeError(CodeBadRequest, "extensions.persistedQuery must be an object: {version: 1, sha256Hash}")
		}
		if v, ok := pq["version"]; !ok || !isOne(v) {
			return "", false, codeError(CodeBadRequest, "extensions.persistedQuery.version must be 1, the only version of persisted queries this server knows")
		}
		h, ok := pq["sha256Hash"].(string)
		if !ok {
			return "", false, codeError(CodeBadRequest, "extensions.persistedQuery.sha256Hash must be a string")
		}
		if id != "" && strings.TrimPrefix(id, "sha256:") != h {
			return "", false, codeError(CodeBadRequest, "documentId and extensions.persistedQuery.sha256Hash name different documents")
		}
		id = h
	}
	if id == "" {
		return "", false, nil
	}
	hash = strings.TrimPrefix(id, "sha256:")
	if !isSHA256Hex(hash) {
		return "", false, codeError(CodeBadRequest, "a document is named by the sha256 of its text: 64 lowercase hexadecimal digits")
	}
	return hash, true, nil
}

func isOne(v any) bool {
	switch v := v.(type) {
	case float64:
		return v == 1
	case int:
		return v == 1
	case int64:
		return v == 1
	case interface{ String() string }: // json.Number
		return v.String() == "1"
	}
	return false
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// persistedStore keeps a query sent with its hash once it has passed validation, the limits
// and the role check (it is the last operation context mutator), so that only documents that
// ran take a place in the bounded cache.
type persistedStore struct{ cache graphql.Cache[string] }

var (
	_ graphql.HandlerExtension        = persistedStore{}
	_ graphql.OperationContextMutator = persistedStore{}
)

func (persistedStore) ExtensionName() string                   { return "PersistedQueriesStore" }
func (persistedStore) Validate(graphql.ExecutableSchema) error { return nil }
func (s persistedStore) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if hash, ok := oc.Stats.GetExtension(pendingHashKey).(string); ok && s.cache != nil {
		s.cache.Add(ctx, hash, oc.RawQuery)
	}
	return nil
}
