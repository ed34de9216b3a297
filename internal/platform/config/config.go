// Package config holds Strata's settings: one Config, parsed from command-line flags with an
// environment variable behind each flag, validated once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/partition"
)

// Config is every setting of a Strata process.
type Config struct {
	// DatabaseURL selects the PostgreSQL server; empty starts a private cluster under DataDir.
	DatabaseURL string
	// ReadDatabaseURL, when set, names a streaming replica of DatabaseURL that queries of
	// projections and history read from; empty reads everything from DatabaseURL.
	ReadDatabaseURL string
	// ListenDatabaseURL reaches the same database on a session of its own (not through a pooler
	// in transaction mode): the LISTEN connection, leadership locks, rebuild locks and
	// migrations use it. Empty means DatabaseURL.
	ListenDatabaseURL string
	// DataDir holds the private cluster's data (DataDir/postgres) and log.
	DataDir string
	// Addr is the HTTP listen address of `strata serve`.
	Addr string
	// PprofAddr, when set, is a loopback address where `strata serve` serves Go's profiles
	// (net/http/pprof) on a listener of their own; empty: nowhere.
	PprofAddr string
	// MaxPageSize caps first on GraphQL connections.
	MaxPageSize int
	// ConsistencyTimeout bounds how long a query's consistentWith waits for a projection.
	ConsistencyTimeout time.Duration
	// AllowedOrigins may open WebSocket connections besides the server's own origin.
	AllowedOrigins []string
	// SubscriberBuffer is how many events may wait for one subscriber before it reads on from
	// the table.
	SubscriberBuffer int
	// MaxReplayEvents bounds the events replayed for a list as of a past time.
	MaxReplayEvents int
	// SnapshotEvery is "category=N" items: how many events a load replays past an aggregate's
	// newest snapshot before it leaves a new one (0 turns snapshots off for the category).
	SnapshotEvery []string
	// Limits against hostile requests (graph.Limits).
	MaxDepth, MaxAliases, MaxRootFields, MaxComplexity, MaxTokens int
	MaxBodyBytes                                                  int
	RequestTimeout                                                time.Duration
	MaxSubscriptionsPerConnection                                 int
	// Mode is development (introspection and suggestions on) or production (off).
	Mode string
	// Insecure allows serving on a non-loopback address although no authentication is
	// configured (then every client may read and write).
	Insecure bool
	// Authentication: a JWT HS256 secret (read from a file), PEM public keys for RS256/ES256,
	// the issuer and audience tokens must carry, and static API keys as name:role:sha256-hex.
	JWTSecretFile        string
	JWTPublicKeys        []string
	JWTIssuer            string
	JWTAudience          string
	APIKeys              []string
	MaxConnsPerPrincipal int
	// PersonalDataKeyFile holds the master key that wraps the keys of personal data.
	PersonalDataKeyFile string
	// CORSOrigins may call the API from a browser page of another origin; empty allows none.
	CORSOrigins []string
	// TrustedDocumentsFile, when set, holds the only documents the server runs (trusted.go).
	TrustedDocumentsFile string
	// KeepAlive is the WebSocket keep-alive interval (graphql-ws ka, graphql-transport-ws ping),
	// and how long an SSE stream stays quiet before a comment.
	KeepAlive time.Duration
	// WriteTimeout bounds one write to a subscriber (a WebSocket message, an SSE event).
	WriteTimeout time.Duration
	// ReadTimeout bounds how long a request's headers may take to arrive, and then its body;
	// IdleTimeout closes a keep-alive connection that waits that long for its next request;
	// MaxHeaderBytes bounds a request's headers (beyond it: 431).
	ReadTimeout, IdleTimeout time.Duration
	MaxHeaderBytes           int
	// DBMaxConns bounds the connection pool.
	DBMaxConns int
	// MaxEventsPerAppend and MaxEventSize bound one append.
	MaxEventsPerAppend int
	MaxEventSize       int
	// GroupCommit packs concurrent appends into shared transactions, bounded by GroupMaxEvents
	// and GroupMaxBytes, with at most GroupWriters in flight (eventstore.Options).
	GroupCommit                                 bool
	GroupMaxEvents, GroupMaxBytes, GroupWriters int
	// PartitionSize is how many positions each partition of the events table spans when made.
	PartitionSize int
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// ScavengeInterval is how often serve's scavenger deletes the events streams hide (0: never);
	// ScavengeBatch bounds one delete statement (eventstore.ScavengeOptions).
	ScavengeInterval time.Duration
	ScavengeBatch    int
	// LogLevel and LogFormat ("text" or "json") shape the logs on stderr.
	LogLevel  slog.Level
	LogFormat string
}

// Setting describes one setting: its flag, its environment variable, its default.
type Setting struct {
	Flag, Env, Default, Usage string
}

// FlagSet is a flag.FlagSet whose flags fall back to environment variables. It remembers what it
// registered, for the README table and --help, and the first bad environment value it met.
type FlagSet struct {
	*flag.FlagSet
	getenv   func(string) string
	settings []Setting
	envErr   error
}

// NewFlagSet returns a FlagSet for the subcommand name that reads the environment with getenv
// and writes usage to out.
func NewFlagSet(name string, getenv func(string) string, out io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &FlagSet{FlagSet: fs, getenv: getenv}
}

func (f *FlagSet) register(p flag.Value, name, env, usage string) {
	def := p.String()
	if v := f.getenv(env); v != "" {
		if err := p.Set(v); err != nil && f.envErr == nil {
			f.envErr = fmt.Errorf("environment %s=%q: %w", env, v, err)
		}
	}
	f.settings = append(f.settings, Setting{Flag: name, Env: env, Default: def, Usage: usage})
	f.Var(p, name, fmt.Sprintf("%s (env %s)", usage, env))
	f.Lookup(name).DefValue = def // --help shows the built-in default, not the environment's value
}

// String registers a string setting.
func (f *FlagSet) String(p *string, name, env, def, usage string) {
	*p = def
	f.register((*stringValue)(p), name, env, usage)
}

// Int registers an int setting.
func (f *FlagSet) Int(p *int, name, env string, def int, usage string) {
	*p = def
	f.register((*intValue)(p), name, env, usage)
}

// Duration registers a duration setting.
func (f *FlagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	*p = def
	f.register((*durationValue)(p), name, env, usage)
}

// StringList registers a comma-separated list setting; def is its default (empty when none).
func (f *FlagSet) StringList(p *[]string, name, env, usage string, def ...string) {
	*p = def
	f.register((*listValue)(p), name, env, usage)
}

type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = nil
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// Parse parses args; environment values were applied when the flags were registered, so a flag
// given on the command line wins over its variable.
func (f *FlagSet) Parse(args []string) error {
	if f.envErr != nil {
		fmt.Fprintln(f.Output(), f.envErr)
		return f.envErr
	}
	return f.FlagSet.Parse(args)
}

// Settings lists the registered settings in registration order.
func (f *FlagSet) Settings() []Setting { return f.settings }

// Register adds the settings every subcommand that talks to the database shares.
func (c *Config) Register(f *FlagSet) {
	f.String(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL; empty starts a private cluster under --data-dir")
	f.String(&c.ListenDatabaseURL, "listen-database-url", "LISTEN_DATABASE_URL", "", "PostgreSQL URL of the same database for session work (LISTEN, leadership and migration locks), direct rather than through a pooler in transaction mode; empty means --database-url")
	f.String(&c.DataDir, "data-dir", "STRATA_DATA_DIR", ".strata", "directory for the private cluster's data and log")
	f.Int(&c.DBMaxConns, "db-max-conns", "STRATA_DB_MAX_CONNS", 20, "most connections in the pool")
	f.Int(&c.MaxEventsPerAppend, "max-events-per-append", "STRATA_MAX_EVENTS_PER_APPEND", eventstore.DefaultMaxEventsPerAppend, "most events in one append")
	f.Int(&c.MaxEventSize, "max-event-size", "STRATA_MAX_EVENT_SIZE", eventstore.DefaultMaxEventSize, "most bytes of data plus metadata in one event")
	f.Bool(&c.GroupCommit, "group-commit", "STRATA_GROUP_COMMIT", true, "pack appends that arrive together into one transaction (false: a transaction per append)")
	f.Int(&c.GroupMaxEvents, "group-max-events", "STRATA_GROUP_MAX_EVENTS", eventstore.DefaultGroupMaxEvents, "most events in one group commit (one append always fits)")
	f.Int(&c.GroupMaxBytes, "group-max-bytes", "STRATA_GROUP_MAX_BYTES", eventstore.DefaultGroupMaxBytes, "most bytes of event data in one group commit (one append always fits)")
	f.Int(&c.GroupWriters, "group-writers", "STRATA_GROUP_WRITERS", eventstore.DefaultGroupWriters, "group commits in flight at once")
	f.Int(&c.PartitionSize, "partition-size", "STRATA_PARTITION_SIZE", partition.DefaultSize, "positions each new partition of the events table spans")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", "STRATA_SHUTDOWN_TIMEOUT", 15*time.Second, "how long a graceful stop may take")
	c.LogLevel = slog.LevelInfo
	f.register(levelValue{&c.LogLevel}, "log-level", "STRATA_LOG_LEVEL", "log level: debug, info, warn or error")
	f.String(&c.LogFormat, "log-format", "STRATA_LOG_FORMAT", "text", "log format: text or json")
}

// RegisterServe adds the settings of `strata serve`.
func (c *Config) RegisterServe(f *FlagSet) {
	f.String(&c.Addr, "addr", "STRATA_ADDR", "127.0.0.1:8080", "HTTP listen address")
	f.String(&c.PprofAddr, "pprof-addr", "STRATA_PPROF_ADDR", "", "loopback address (127.0.0.1:6060) where Go's profiles are served under /debug/pprof/, for profiling a running server; empty: off")
	f.Int(&c.MaxPageSize, "max-page-size", "STRATA_MAX_PAGE_SIZE", 1000, "most items one GraphQL page (first) may ask for")
	f.StringList(&c.AllowedOrigins, "allowed-origins", "STRATA_ALLOWED_ORIGINS", "origins (scheme://host:port, comma-separated) that may open WebSocket connections besides the server's own")
	f.Int(&c.SubscriberBuffer, "subscriber-buffer", "STRATA_SUBSCRIBER_BUFFER", 256, "events that may wait for one subscriber before it reads on from the log by itself")
	f.StringList(&c.SnapshotEvery, "snapshot-every", "STRATA_SNAPSHOT_EVERY", "snapshot an aggregate every N events, per category (0 turns it off); every registered aggregate's default is 100")
	f.String(&c.ReadDatabaseURL, "read-database-url", "READ_DATABASE_URL", "", "PostgreSQL URL of a streaming replica of --database-url that queries of projections and history read from; empty: the primary")
	f.Int(&c.MaxReplayEvents, "max-replay-events", "STRATA_MAX_REPLAY_EVENTS", 100000, "most events replayed to answer users or orders as of a past time")
	f.Bool(&c.Insecure, "insecure", "STRATA_INSECURE", false, "serve on a non-loopback --addr without authentication (anyone who reaches it may read and write)")
	f.String(&c.JWTSecretFile, "jwt-secret-file", "STRATA_JWT_SECRET_FILE", "", "file holding the HS256 secret that signs accepted JWTs (at least 32 bytes)")
	f.StringList(&c.JWTPublicKeys, "jwt-public-keys", "STRATA_JWT_PUBLIC_KEYS", "PEM files of the public keys that verify RS256 (RSA) and ES256 (P-256) JWTs, comma-separated")
	f.String(&c.JWTIssuer, "jwt-issuer", "STRATA_JWT_ISSUER", "", "when set, a JWT's iss must equal it")
	f.String(&c.JWTAudience, "jwt-audience", "STRATA_JWT_AUDIENCE", "", "when set, a JWT's aud must include it")
	f.StringList(&c.APIKeys, "api-keys", "STRATA_API_KEYS", "static API keys as name:role:sha256-hex-of-the-key, comma-separated (role: reader, writer or admin)")
	f.Int(&c.MaxConnsPerPrincipal, "max-connections-per-principal", "STRATA_MAX_CONNECTIONS_PER_PRINCIPAL", 100, "most WebSocket connections one authenticated principal may hold open")
	f.StringList(&c.CORSOrigins, "cors-origins", "STRATA_CORS_ORIGINS", "origins (scheme://host:port, comma-separated) whose pages may call the API from a browser; empty allows none")
	f.String(&c.TrustedDocumentsFile, "trusted-documents", "STRATA_TRUSTED_DOCUMENTS", "", "JSON file of sha256 hex → GraphQL document (graphql-codegen's persisted documents): the only documents the server runs, besides the Explorer's; empty runs any")
	f.String(&c.Mode, "mode", "STRATA_MODE", "development", "development (schema introspection and field suggestions on) or production (off)")
	f.Int(&c.MaxDepth, "max-depth", "STRATA_MAX_DEPTH", 15, "deepest nesting of fields one operation may ask for")
	f.Int(&c.MaxAliases, "max-aliases", "STRATA_MAX_ALIASES", 50, "most aliased fields in one operation")
	f.Int(&c.MaxRootFields, "max-root-fields", "STRATA_MAX_ROOT_FIELDS", 20, "most top-level fields in one operation")
	f.Int(&c.MaxComplexity, "max-complexity", "STRATA_MAX_COMPLEXITY", 50000, "most complexity one operation may have (a field costs 1, a page costs its first times its fields)")
	f.Int(&c.MaxTokens, "max-tokens", "STRATA_MAX_TOKENS", 15000, "most tokens the parser reads in one operation")
	f.Int(&c.MaxBodyBytes, "max-body-bytes", "STRATA_MAX_BODY_BYTES", 1<<20, "largest request body, and largest WebSocket message, in bytes")
	f.Duration(&c.RequestTimeout, "request-timeout", "STRATA_REQUEST_TIMEOUT", 30*time.Second, "longest a request may run (its database work is cancelled with it)")
	f.Int(&c.MaxSubscriptionsPerConnection, "max-subscriptions-per-connection", "STRATA_MAX_SUBSCRIPTIONS_PER_CONNECTION", 100, "most subscriptions one WebSocket connection may run at once")
	f.Duration(&c.ReadTimeout, "read-timeout", "STRATA_READ_TIMEOUT", 10*time.Second, "how long a request's headers may take to arrive, and then its body, before the connection is cut off (WebSocket connections keep their own keep-alive)")
	f.Duration(&c.IdleTimeout, "idle-timeout", "STRATA_IDLE_TIMEOUT", 2*time.Minute, "how long a keep-alive connection may wait for its next request before it is closed")
	f.Int(&c.MaxHeaderBytes, "max-header-bytes", "STRATA_MAX_HEADER_BYTES", 64<<10, "largest request line and headers, in bytes (beyond it: HTTP 431)")
	f.Duration(&c.KeepAlive, "ws-keepalive", "STRATA_WS_KEEPALIVE", 10*time.Second, "WebSocket keep-alive interval (ka, or ping with a pong due within twice it), and the longest an SSE stream stays quiet before a keep-alive comment")
	f.Duration(&c.WriteTimeout, "write-timeout", "STRATA_WRITE_TIMEOUT", 10*time.Second, "longest one write to a subscriber (a WebSocket message, an SSE event) may take; a client that does not take it in time is dropped as a slow consumer")
	f.Duration(&c.ConsistencyTimeout, "consistency-timeout", "STRATA_CONSISTENCY_TIMEOUT", 5*time.Second, "how long a query with consistentWith waits for a projection")
	c.RegisterPersonal(f)
	f.Duration(&c.ScavengeInterval, "scavenge-interval", "STRATA_SCAVENGE_INTERVAL", eventstore.DefaultScavengeInterval, "how often the scavenger deletes the events streams hide (deleted, truncated, beyond maxAge or maxCount); 0 never")
	c.RegisterScavenge(f)
}

// RegisterPersonal adds the master key of personal data, for every command that reads events
// through the store (`strata serve`, `strata projections`).
func (c *Config) RegisterPersonal(f *FlagSet) {
	f.String(&c.PersonalDataKeyFile, "personal-data-key-file", "STRATA_PERSONAL_DATA_KEY_FILE", "", "file holding the master key (64 hex digits) that wraps the keys of personal data; empty: keys are stored unwrapped")
}

// RegisterScavenge adds the settings of the scavenger (`strata serve`, `strata scavenge`).
func (c *Config) RegisterScavenge(f *FlagSet) {
	f.Int(&c.ScavengeBatch, "scavenge-batch", "STRATA_SCAVENGE_BATCH", eventstore.DefaultScavengeBatch, "most events the scavenger deletes in one transaction")
}

// Validate checks the settings once, after parsing.
func (c *Config) Validate() error {
	var errs []error
	if c.DBMaxConns < 1 {
		errs = append(errs, fmt.Errorf("--db-max-conns must be at least 1, not %d", c.DBMaxConns))
	}
	if c.MaxEventsPerAppend < 1 {
		errs = append(errs, fmt.Errorf("--max-events-per-append must be at least 1, not %d", c.MaxEventsPerAppend))
	}
	if c.MaxEventSize < 2 {
		errs = append(errs, fmt.Errorf("--max-event-size must be at least 2 bytes, not %d", c.MaxEventSize))
	}
	if _, err := c.Snapshots(); err != nil {
		errs = append(errs, err)
	}
	if c.Addr != "" && c.MaxReplayEvents < 1 {
		errs = append(errs, fmt.Errorf("--max-replay-events must be at least 1, not %d", c.MaxReplayEvents))
	}
	if c.Addr != "" && !c.Insecure && !c.AuthConfigured() && !Loopback(c.Addr) {
		errs = append(errs, fmt.Errorf("--addr %s is reachable from other machines, and no authentication is configured: configure --jwt-secret-file, --jwt-public-keys or --api-keys, serve on 127.0.0.1 or [::1], or pass --insecure to accept that anyone who reaches it may read and write", c.Addr))
	}
	if c.PprofAddr != "" && !Loopback(c.PprofAddr) {
		errs = append(errs, fmt.Errorf("--pprof-addr %s is reachable from other machines: profiles show the server's memory and code paths, so they are served on a loopback address only (127.0.0.1:6060, [::1]:6060)", c.PprofAddr))
	}
	if c.Addr != "" {
		if _, err := c.Authenticator(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := c.PersonalDataKey(); c.Addr != "" && err != nil {
		errs = append(errs, err)
	}
	if c.Addr != "" && c.MaxConnsPerPrincipal < 0 {
		errs = append(errs, fmt.Errorf("--max-connections-per-principal must be at least 0, not %d", c.MaxConnsPerPrincipal))
	}
	if _, err := c.TrustedDocuments(); c.Addr != "" && err != nil {
		errs = append(errs, err)
	}
	if c.Addr != "" && c.Mode != "development" && c.Mode != "production" {
		errs = append(errs, fmt.Errorf("--mode must be development or production, not %q", c.Mode))
	}
	for name, v := range map[string]int{"max-depth": c.MaxDepth, "max-aliases": c.MaxAliases, "max-root-fields": c.MaxRootFields,
		"max-complexity": c.MaxComplexity, "max-tokens": c.MaxTokens, "max-body-bytes": c.MaxBodyBytes, "max-subscriptions-per-connection": c.MaxSubscriptionsPerConnection,
		"max-header-bytes": c.MaxHeaderBytes} {
		if c.Addr != "" && v < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1, not %d", name, v))
		}
	}
	if c.Addr != "" && c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--request-timeout must be positive, not %s", c.RequestTimeout))
	}
	for name, v := range map[string]time.Duration{"read-timeout": c.ReadTimeout, "idle-timeout": c.IdleTimeout, "write-timeout": c.WriteTimeout} {
		if c.Addr != "" && v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, not %s", name, v))
		}
	}
	if c.Addr != "" && c.KeepAlive <= 0 {
		errs = append(errs, fmt.Errorf("--ws-keepalive must be positive, not %s", c.KeepAlive))
	}
	if c.Addr != "" && c.SubscriberBuffer < 1 {
		errs = append(errs, fmt.Errorf("--subscriber-buffer must be at least 1, not %d", c.SubscriberBuffer))
	}
	if c.Addr != "" && c.ConsistencyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--consistency-timeout must be positive, not %s", c.ConsistencyTimeout))
	}
	for name, v := range map[string]int{"group-max-events": c.GroupMaxEvents, "group-max-bytes": c.GroupMaxBytes, "group-writers": c.GroupWriters} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1, not %d", name, v))
		}
	}
	if c.ScavengeInterval < 0 {
		errs = append(errs, fmt.Errorf("--scavenge-interval must be 0 (never) or positive, not %s", c.ScavengeInterval))
	}
	if c.ScavengeBatch < 0 {
		errs = append(errs, fmt.Errorf("--scavenge-batch must not be negative (0 means %d), not %d", eventstore.DefaultScavengeBatch, c.ScavengeBatch))
	}
	if c.PartitionSize < 1 {
		errs = append(errs, fmt.Errorf("--partition-size must be at least 1, not %d", c.PartitionSize))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout must be positive, not %s", c.ShutdownTimeout))
	}
	if c.Addr != "" && (c.MaxPageSize < 1 || c.MaxPageSize >= eventstore.DefaultMaxReadCount) {
		errs = append(errs, fmt.Errorf("--max-page-size must be from 1 to %d, not %d", eventstore.DefaultMaxReadCount-1, c.MaxPageSize))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat))
	}
	if c.ReadDatabaseURL != "" && c.DatabaseURL == "" {
		errs = append(errs, errors.New("--read-database-url needs --database-url: a replica follows a server it can name, and the private cluster moves to a new port at every start"))
	}
	if c.ListenDatabaseURL != "" && c.DatabaseURL == "" {
		errs = append(errs, errors.New("--listen-database-url needs --database-url: the private cluster is reached directly"))
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must be set when --database-url is empty"))
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("--addr %q: %w", c.Addr, err))
		} else if _, err := strconv.ParseUint(port, 10, 16); port != "" && err != nil {
			errs = append(errs, fmt.Errorf("--addr %q: port must be a number from 0 to 65535", c.Addr))
		}
	}
	return errors.Join(errs...)
}

// DefaultSnapshotEvery applies to every registered aggregate unless --snapshot-every says
// otherwise.
const DefaultSnapshotEvery = 100

// SessionURL returns the URL for session work: ListenDatabaseURL, else DatabaseURL.
func (c *Config) SessionURL() string {
	if c.ListenDatabaseURL != "" {
		return c.ListenDatabaseURL
	}
	return c.DatabaseURL
}

// Snapshots returns --snapshot-every as a map from category to N, with DefaultSnapshotEvery
// for every registered aggregate's category.
func (c *Config) Snapshots() (map[string]int, error) {
	m := map[string]int{}
	for _, k := range aggregates.All() {
		m[k.Describe().Category] = DefaultSnapshotEvery
	}
	for _, item := range c.SnapshotEvery {
		cat, n, ok := strings.Cut(item, "=")
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || cat == "" || err != nil || v < 0 {
			return nil, fmt.Errorf("--snapshot-every: %q is not category=N with N at least 0", item)
		}
		m[strings.TrimSpace(cat)] = v
	}
	return m, nil
}

// StoreOptions returns the event store's limits.
func (c *Config) StoreOptions() eventstore.Options {
	return eventstore.Options{MaxEventsPerAppend: c.MaxEventsPerAppend, MaxEventSize: c.MaxEventSize,
		GroupCommit: c.GroupCommit, GroupMaxEvents: c.GroupMaxEvents, GroupMaxBytes: c.GroupMaxBytes, GroupWriters: c.GroupWriters}
}

// Loopback reports whether a listen address only accepts connections from this machine.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Bool registers a boolean setting with its default; the environment takes true/false/1/0.
func (f *FlagSet) Bool(p *bool, name, env string, def bool, usage string) {
	*p = def
	f.register((*boolValue)(p), name, env, usage)
}

type boolValue bool

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	*b = boolValue(x)
	return nil
}

func (b *boolValue) String() string { return strconv.FormatBool(bool(*b)) }

// IsBoolFlag lets --insecure stand alone on the command line.
func (b *boolValue) IsBoolFlag() bool { return true }

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type intValue int

func (i *intValue) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	*i = intValue(n)
	return nil
}
func (i *intValue) String() string { return strconv.Itoa(int(*i)) }

type durationValue time.Duration

func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10s or 2m", v)
	}
	*d = durationValue(x)
	return nil
}
func (d *durationValue) String() string { return time.Duration(*d).String() }

type levelValue struct{ l *slog.Level }

func (v levelValue) Set(s string) error { return v.l.UnmarshalText([]byte(s)) }
func (v levelValue) String() string {
	if v.l == nil { // flag's zero-value probe: "" so that --help shows the default
		return ""
	}
	return strings.ToLower(v.l.String())
}
