package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries means the PostgreSQL server binaries were not found; errors.Is matches every error
// that says so.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres, pg_isready) not found: " +
	"install them (on Debian: apt-get install -y postgresql) or set DATABASE_URL to an existing server")

// debianBinGlob is where Debian and Ubuntu install each major version side by side.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// FindBinDir returns the directory holding initdb, postgres and pg_isready. It tries, in order,
// `pg_config --bindir`, the highest major version under /usr/lib/postgresql/*/bin, and the
// directory of postgres or initdb on PATH (and, when that is a symlink, of its target). The error
// wraps ErrNoBinaries when none qualifies.
func FindBinDir() (string, error) {
	if dir, ok := pgConfigBinDir(); ok && missingBinary(dir) == "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob(debianBinGlob) // the pattern is well-formed
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
	for _, dir := range dirs {
		if versionOf(dir) != nil && missingBinary(dir) == "" {
			return dir, nil
		}
	}
	for _, name := range []string{"postgres", "initdb"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		candidates := []string{filepath.Dir(path)}
		// /usr/local/bin/postgres may be a lone symlink into the real installation.
		if target, err := filepath.EvalSymlinks(path); err == nil {
			candidates = append(candidates, filepath.Dir(target))
		}
		for _, dir := range candidates {
			if abs, err := filepath.Abs(dir); err == nil && missingBinary(abs) == "" {
				return abs, nil
			}
		}
	}
	return "", fmt.Errorf("looked at pg_config --bindir, %s and PATH: %w", debianBinGlob, ErrNoBinaries)
}

// resolveBinDir checks an explicit bin dir, or finds one when it is empty.
func resolveBinDir(dir string) (string, error) {
	if dir == "" {
		return FindBinDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("bin dir %s: %w", dir, err)
	}
	if name := missingBinary(abs); name != "" {
		return "", fmt.Errorf("bin dir %s has no executable %s: %w", abs, name, ErrNoBinaries)
	}
	return abs, nil
}

// pgConfigBinDir asks pg_config, when it is on PATH, where the server binaries are. pg_config
// comes with the development headers and may describe another installation than the one on PATH;
// the caller checks the answer.
func pgConfigBinDir() (string, bool) {
	path, err := exec.LookPath("pg_config")
	if err != nil {
		return "", false
	}
	// FindBinDir has no ctx to honour; pg_config answers at once, the bound only guards
	// against a broken wrapper script.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--bindir").Output()
	if err != nil {
		return "", false
	}
	dir := strings.TrimSpace(string(out))
	return dir, filepath.IsAbs(dir)
}

// missingBinary returns the first server binary dir lacks, or "" when it has them all.
func missingBinary(dir string) string {
	for _, name := range []string{"initdb", "postgres", "pg_isready"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return name
		}
	}
	return ""
}

// versionOf parses the version directory of a Debian bin dir (".../15/bin" or ".../9.6/bin");
// nil when it is not a version.
func versionOf(binDir string) []int {
	parts := strings.Split(filepath.Base(filepath.Dir(binDir)), ".")
	v := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil
		}
		v = append(v, n)
	}
	return v
}

// compareVersions orders versions numerically, so that 10 sorts above 9.6; nil sorts lowest.
func compareVersions(a, b []int) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		default:
			return 1
		}
	}
	return slices.Compare(a, b)
}
