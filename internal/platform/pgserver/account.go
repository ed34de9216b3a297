package pgserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// account is the unprivileged user that runs initdb, postgres and pg_isready when we are root:
// PostgreSQL refuses to run as root.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, the primary one included
	home   string
}

// pickAccount returns nil when we are not root. As root it returns the owner of dir when dir
// exists and belongs to someone other than root (postgres insists that the data directory
// belongs to the user running it, so a cluster made without root stays usable under sudo);
// otherwise the "postgres" user, else "nobody".
func pickAccount(dir string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if st, err := os.Stat(dir); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			u, err := user.LookupId(strconv.FormatUint(uint64(sys.Uid), 10))
			if err != nil {
				// An owner without a passwd entry (a uid from a container, say) can still run it.
				return &account{name: "uid " + strconv.FormatUint(uint64(sys.Uid), 10),
					uid: sys.Uid, gid: sys.Gid, groups: []uint32{sys.Gid}, home: dir}, nil
			}
			return accountOf(u)
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		return accountOf(u)
	}
	return nil, errors.New("running as root, and PostgreSQL refuses to run as root, but there is neither a " +
		"postgres nor a nobody user to run it as: create one (useradd --system postgres) or run as a normal user")
}

func accountOf(u *user.User) (*account, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}, home: u.HomeDir}
	ids, err := u.GroupIds()
	if err != nil {
		ids = nil // the primary group is enough to run postgres
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(a.groups, uint32(g)) {
			a.groups = append(a.groups, uint32(g))
		}
	}
	return a, nil
}

// credential sets the user and its own groups explicitly: with NoSetGroups the child would keep
// our supplementary groups (root's, gid 0 among them).
func (a *account) credential() *syscall.Credential {
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
}

// canSearch reports whether the account may traverse a directory with these permissions. It goes
// by the mode bits alone; an ACL granting more is not seen.
func (a *account) canSearch(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true // let the server's own error speak
	}
	perm := st.Mode().Perm()
	switch {
	case sys.Uid == a.uid:
		return perm&0o100 != 0
	case slices.Contains(a.groups, sys.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// childEnv is our environment without the PG* variables, which would steer pg_isready and the
// server elsewhere (PGSSLMODE, PGDATA...), and with HOME and USER of acct when we switch to it.
func childEnv(acct *account) []string {
	env := make([]string, 0, len(os.Environ())+3)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") {
			continue
		}
		if acct != nil && (name == "HOME" || name == "USER" || name == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	if acct != nil {
		env = append(env, "HOME="+acct.home, "USER="+acct.name, "LOGNAME="+acct.name)
	}
	return env
}

// prepareDir creates dir when missing (parents 0755, dir 0700) and returns its real path. As root
// it also checks that acct can reach the directory and gives it an empty directory owned by root,
// which is what a fresh one is. A fresh dir that acct cannot reach (a clone under /root, say) is
// replaced by a symbolic link to a directory under spareRoot, so `strata serve` works as root
// wherever it is started and its data still sits, by name, under the working directory.
func prepareDir(dir string, acct *account, spareRoot string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil { //nolint:gosec // the server's user must reach the data dir when we run as root
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	st, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("data dir %s is not a directory", dir)
	}
	if acct == nil {
		return resolved, nil
	}
	if err := checkReachable(resolved, acct); err != nil {
		moved, moveErr := relocate(dir, resolved, acct, spareRoot)
		if moveErr != nil {
			return "", errors.Join(err, moveErr)
		}
		if moved == "" {
			return "", err
		}
		if resolved, err = filepath.EvalSymlinks(dir); err != nil {
			return "", fmt.Errorf("data dir %s: %w", dir, err)
		}
		if st, err = os.Stat(resolved); err != nil {
			return "", fmt.Errorf("data dir %s: %w", dir, err)
		}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid != 0 {
		return resolved, nil
	}
	empty, err := isEmptyDir(resolved)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	if !empty {
		return "", fmt.Errorf("data dir %s belongs to root and is not empty; PostgreSQL cannot run as root, "+
			"so hand it to user %s (chown -R %d:%d %s) or choose another directory", resolved, acct.name, acct.uid, acct.gid, resolved)
	}
	if err := os.Chown(resolved, int(acct.uid), int(acct.gid)); err != nil {
		return "", fmt.Errorf("data dir %s: give it to user %s: %w", resolved, acct.name, err)
	}
	return resolved, nil
}

// relocate replaces dir, when it is an empty directory (a fresh cluster), with a symbolic link
// to a directory of its own under spareRoot that acct can reach, and returns that directory. It
// returns "" when dir holds data already: moving a cluster is for its owner to decide.
func relocate(dir, resolved string, acct *account, spareRoot string) (string, error) {
	if spareRoot == "" || resolved != dir {
		return "", nil
	}
	empty, err := isEmptyDir(dir)
	if err != nil || !empty {
		return "", err
	}
	sum := sha256.Sum256([]byte(dir))
	target := filepath.Join(spareRoot, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(spareRoot, 0o755); err != nil { //nolint:gosec // the server's user must reach it
		return "", fmt.Errorf("spare data dir %s: %w", spareRoot, err)
	}
	if err := checkReachable(target, acct); err != nil {
		return "", err
	}
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("spare data dir %s: %w", target, err)
	}
	if err := os.Remove(dir); err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := os.Symlink(target, dir); err != nil {
		return "", fmt.Errorf("data dir %s: link it to %s: %w", dir, target, err)
	}
	return target, nil
}

// checkReachable fails when acct cannot traverse one of dir's ancestors, naming the first that
// blocks it, which is the one the kernel would stop at.
func checkReachable(dir string, acct *account) error {
	var ancestors []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		ancestors = append(ancestors, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(ancestors)
	for _, p := range ancestors {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("data dir %s: %w", dir, err)
		}
		if !acct.canSearch(st) {
			owner := ""
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				owner = fmt.Sprintf(", owner %d:%d", sys.Uid, sys.Gid)
			}
			return fmt.Errorf("data dir %s: PostgreSQL runs as user %s (uid %d) because we are root, and that user "+
				"cannot enter %s (%v%s): make it searchable (chmod o+x %s) or choose a data dir elsewhere: %w",
				dir, acct.name, acct.uid, p, st.Mode(), owner, p, os.ErrPermission)
		}
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
