package config_test

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
)

// parse registers every setting of `strata serve` on a FlagSet reading env, and parses args.
func parse(t *testing.T, env map[string]string, args ...string) (config.Config, *config.FlagSet, error) {
	t.Helper()
	var cfg config.Config
	fs := config.NewFlagSet("strata test", func(k string) string { return env[k] }, &bytes.Buffer{})
	cfg.Register(fs)
	cfg.RegisterServe(fs)
	err := fs.Parse(args)
	return cfg, fs, err
}

// Each kind of value (string, int, duration, level) is covered, since each has its own parser.
var precedenceCases = []struct {
	flag, env          string
	envValue, argValue string
	get                func(config.Config) any
	fromDefault        any
	fromEnv, fromFlag  any
}{
	{"addr", "STRATA_ADDR", "127.0.0.1:1111", "127.0.0.1:2222",
		func(c config.Config) any { return c.Addr }, "127.0.0.1:8080", "127.0.0.1:1111", "127.0.0.1:2222"},
	{"database-url", "DATABASE_URL", "postgres://env@h/db", "postgres://flag@h/db",
		func(c config.Config) any { return c.DatabaseURL }, "", "postgres://env@h/db", "postgres://flag@h/db"},
	{"db-max-conns", "STRATA_DB_MAX_CONNS", "7", "9",
		func(c config.Config) any { return c.DBMaxConns }, 20, 7, 9},
	{"shutdown-timeout", "STRATA_SHUTDOWN_TIMEOUT", "3s", "2m",
		func(c config.Config) any { return c.ShutdownTimeout }, 15 * time.Second, 3 * time.Second, 2 * time.Minute},
	{"log-level", "STRATA_LOG_LEVEL", "debug", "error",
		func(c config.Config) any { return c.LogLevel }, slog.LevelInfo, slog.LevelDebug, slog.LevelError},
}

func TestFlagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range precedenceCases {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := parse(t, map[string]string{tc.env: tc.envValue}, "--"+tc.flag, tc.argValue)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := tc.get(cfg); got != tc.fromFlag {
				t.Errorf("%s=%s and --%s %s gave %v, want the flag's %v", tc.env, tc.envValue, tc.flag, tc.argValue, got, tc.fromFlag)
			}
		})
	}
}

func TestEnvironmentBeatsDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range precedenceCases {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := parse(t, nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := tc.get(cfg); got != tc.fromDefault {
				t.Errorf("with nothing set, %s = %v, want the default %v", tc.flag, got, tc.fromDefault)
			}
			cfg, _, err = parse(t, map[string]string{tc.env: tc.envValue})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := tc.get(cfg); got != tc.fromEnv {
				t.Errorf("%s=%s gave %v, want %v", tc.env, tc.envValue, got, tc.fromEnv)
			}
		})
	}
}

func TestBadEnvironmentValueFailsParseNamingTheVariable(t *testing.T) {
	t.Parallel()
	for env, value := range map[string]string{
		"STRATA_DB_MAX_CONNS":     "abc",
		"STRATA_SHUTDOWN_TIMEOUT": "soon",
		"STRATA_LOG_LEVEL":        "loud",
	} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			_, _, err := parse(t, map[string]string{env: value})
			if err == nil {
				t.Fatalf("%s=%s: parse succeeded, want an error", env, value)
			}
			if !strings.Contains(err.Error(), env) {
				t.Errorf("%s=%s: error %q does not name the variable", env, value, err)
			}
		})
	}
}

func TestValidateAcceptsDefaults(t *testing.T) {
	t.Parallel()
	cfg, _, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate of the defaults: %v", err)
	}
	cfg.DataDir, cfg.DatabaseURL = "", "postgres://u@h/db"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with a database URL and no data dir: %v", err)
	}
}

func TestValidateRejectsBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		names  string // what the error must mention
	}{
		{"no connections", func(c *config.Config) { c.DBMaxConns = 0 }, "--db-max-conns"},
		{"negative connections", func(c *config.Config) { c.DBMaxConns = -3 }, "--db-max-conns"},
		{"no events per append", func(c *config.Config) { c.MaxEventsPerAppend = 0 }, "--max-events-per-append"},
		{"one-byte events", func(c *config.Config) { c.MaxEventSize = 1 }, "--max-event-size"},
		{"zero shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = 0 }, "--shutdown-timeout"},
		{"negative shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = -time.Second }, "--shutdown-timeout"},
		{"xml logs", func(c *config.Config) { c.LogFormat = "xml" }, "--log-format"},
		{"empty log format", func(c *config.Config) { c.LogFormat = "" }, "--log-format"},
		{"neither database nor data dir", func(c *config.Config) { c.DatabaseURL, c.DataDir = "", "" }, "--data-dir"},
		{"address without port", func(c *config.Config) { c.Addr = "localhost" }, "--addr"},
		{"API key in the clear", func(c *config.Config) { c.APIKeys = []string{"s3cret"} }, "--api-keys"},
		{"unknown role", func(c *config.Config) { c.APIKeys = []string{"ops:root:" + strings.Repeat("ab", 32)} }, "unknown role"},
		{"missing secret file", func(c *config.Config) { c.JWTSecretFile = "/nonexistent/secret" }, "--jwt-secret-file"},
		{"missing personal data key file", func(c *config.Config) { c.PersonalDataKeyFile = "/nonexistent/key" }, "--personal-data-key-file"},
		{"personal data key not 256 bits of hex", func(c *config.Config) { c.PersonalDataKeyFile = shortSecret(t) }, "64 hexadecimal digits"},
		{"short secret", func(c *config.Config) { c.JWTSecretFile = shortSecret(t) }, "at least 32"},
		{"missing key file", func(c *config.Config) { c.JWTPublicKeys = []string{"/nonexistent/key.pem"} }, "--jwt-public-keys"},
		{"replica of the private cluster", func(c *config.Config) { c.DatabaseURL, c.ReadDatabaseURL = "", "postgres://127.0.0.1:5433/strata" }, "--read-database-url"},
		{"negative connections per principal", func(c *config.Config) { c.MaxConnsPerPrincipal = -1 }, "--max-connections-per-principal"},
		{"zero read timeout", func(c *config.Config) { c.ReadTimeout = 0 }, "--read-timeout must be positive"},
		{"negative idle timeout", func(c *config.Config) { c.IdleTimeout = -time.Second }, "--idle-timeout must be positive"},
		{"no header bytes", func(c *config.Config) { c.MaxHeaderBytes = 0 }, "--max-header-bytes must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := parse(t, nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(&cfg)
			err = cfg.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %+v", cfg)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("Validate error %q does not name %s", err, tc.names)
			}
		})
	}
}

func TestSettingsListEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	t.Parallel()
	_, fs, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	byFlag := map[string]config.Setting{}
	envs := map[string]string{}
	for _, s := range fs.Settings() {
		if _, dup := byFlag[s.Flag]; dup {
			t.Errorf("flag --%s listed twice", s.Flag)
		}
		byFlag[s.Flag] = s
		if other, dup := envs[s.Env]; dup {
			t.Errorf("%s backs both --%s and --%s", s.Env, other, s.Flag)
		}
		envs[s.Env] = s.Flag
		// The database URLs keep the names such settings have everywhere.
		if s.Env != "DATABASE_URL" && s.Env != "READ_DATABASE_URL" && s.Env != "LISTEN_DATABASE_URL" && !strings.HasPrefix(s.Env, "STRATA_") {
			t.Errorf("--%s: environment variable %q does not start with STRATA_", s.Flag, s.Env)
		}
		if s.Usage == "" {
			t.Errorf("--%s has no usage text", s.Flag)
		}
	}
	if byFlag["database-url"].Env != "DATABASE_URL" {
		t.Errorf("--database-url is backed by %q, want DATABASE_URL", byFlag["database-url"].Env)
	}
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		s, ok := byFlag[f.Name]
		if !ok {
			t.Errorf("flag --%s is missing from Settings()", f.Name)
			return
		}
		if want := "(env " + s.Env + ")"; !strings.Contains(f.Usage, want) {
			t.Errorf("--%s usage %q does not mention %s", f.Name, f.Usage, want)
		}
	})
	if n != len(byFlag) {
		t.Errorf("%d flags registered, %d settings listed", n, len(byFlag))
	}
}

// The README's settings table is the one place settings are documented (STYLE.md): one row
// per setting of `strata serve --help`, with its flag, variable and default, and no row for a
// setting that no longer exists.
func TestReadmeListsEverySetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, fs, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range fs.Settings() {
		known[s.Flag] = true
		def := "(empty)"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		row := fmt.Sprintf("| `--%s` | `%s` | %s |", s.Flag, s.Env, def)
		if n := strings.Count(string(readme), row); n != 1 {
			t.Errorf("README has %d rows starting %q, want 1", n, row)
		}
	}
	for _, line := range strings.Split(string(readme), "\n") {
		if flag, ok := strings.CutPrefix(line, "| `--"); ok {
			name, rest, _ := strings.Cut(flag, "`")
			if strings.HasPrefix(rest, " |") && !known[name] { // rows of one flag; bench rows list several
				t.Errorf("README documents --%s, which strata serve does not have", name)
			}
		}
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:80": true, "127.1.2.3:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.0.2.10:80": false, "example.com:80": false, "nonsense": false,
	} {
		if got := config.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestNonLoopbackNeedsInsecure(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--addr", "0.0.0.0:8080"}, {"--addr", ":8080", "--insecure=false"}} {
		c, _, err := parse(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%v: %v, want a refusal naming --insecure", args, err)
		}
	}
	for _, args := range [][]string{{"--addr", "0.0.0.0:8080", "--insecure"}, {"--addr", "127.0.0.1:8080"},
		{"--addr", "0.0.0.0:8080", "--api-keys", "ops:admin:" + strings.Repeat("ab", 32)}} {
		c, _, err := parse(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// A master key for personal data is 64 hex digits, with or without a final newline.
func TestPersonalDataKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(strings.Repeat("0f", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Config{PersonalDataKeyFile: path}
	key, err := c.PersonalDataKey()
	if err != nil || len(key) != 32 || key[0] != 0x0f {
		t.Errorf("PersonalDataKey = %x, %v", key, err)
	}
	if key, err := (&config.Config{}).PersonalDataKey(); key != nil || err != nil {
		t.Errorf("without a file: %x, %v", key, err)
	}
}

func shortSecret(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("too-short"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every registered aggregate is snapshotted every DefaultSnapshotEvery events unless
// --snapshot-every says otherwise, an aggregate added on the runtime included.
func TestSnapshotsDefaultToEveryRegisteredAggregate(t *testing.T) {
	c := config.Config{SnapshotEvery: []string{"order=0", "tally=5"}}
	got, err := c.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"user": config.DefaultSnapshotEvery, "order": 0, "product": config.DefaultSnapshotEvery, "tally": 5}
	if !maps.Equal(got, want) {
		t.Errorf("Snapshots() = %v, want %v", got, want)
	}
	if _, err := (&config.Config{SnapshotEvery: []string{"order=-1"}}).Snapshots(); err == nil {
		t.Error("a negative N was accepted")
	}
}
