package pgcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// serverAccounts are the OS accounts tried, in order, to run PostgreSQL when
// the process is root: "postgres" exists wherever the server package is
// installed, "nobody" almost everywhere else.
var serverAccounts = []string{"postgres", "nobody"}

// osUser is the account initdb, pg_ctl and the server run as. A nil *osUser
// means the current user, which is what happens when the process is not root.
type osUser struct {
	name     string
	uid, gid uint32
}

// serverUser picks the account to run PostgreSQL as: nil (the current user)
// unless the process is root, which initdb and postgres refuse to run as.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range serverAccounts {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse uid %q of OS user %s: %w", u.Uid, name, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse gid %q of OS user %s: %w", u.Gid, name, err)
		}
		return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and none of the OS users %v exists to run it as: create a postgres user (apt-get install postgresql does)", serverAccounts)
}

// String names the account for messages.
func (u *osUser) String() string {
	if u == nil {
		return "the current user"
	}
	return "OS user " + u.name
}

// configure makes cmd run as the account, from a working directory the
// account can certainly enter (initdb complains when it cannot).
func (u *osUser) configure(cmd *exec.Cmd) {
	cmd.Dir = "/"
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if u == nil {
		return
	}
	// Groups stays empty: the child drops root's supplementary groups and
	// keeps only the account's primary group, which canTraverse relies on.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
}

// chownTree gives dir and everything below it to the account, so that a data
// directory created by root, or by an earlier run as another account, is
// usable by the server.
func (u *osUser) chownTree(dir string) error {
	if u == nil {
		return nil
	}
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(u.uid), int(u.gid))
	})
	if err != nil {
		return fmt.Errorf("give %s to %s: %w", dir, u, err)
	}
	return nil
}

// checkReachable fails with a remedy when some parent directory of path
// cannot be traversed by the account; otherwise the server would fail later
// with a bare "permission denied".
func (u *osUser) checkReachable(path string) error {
	if u == nil {
		return nil
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("check access to %s: %w", dir, err)
		}
		if !u.canTraverse(info) {
			return fmt.Errorf("%s (mode %v) is not traversable by %s, which runs PostgreSQL because root may not: "+
				"put the data directory elsewhere or run chmod o+x %s", dir, info.Mode().Perm(), u, dir)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

// canTraverse applies the owner, group and other execute bits of a directory
// to the account the way the kernel does.
func (u *osUser) canTraverse(info fs.FileInfo) bool {
	perm := info.Mode().Perm()
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return perm&0o001 != 0
	}
	switch {
	case st.Uid == u.uid:
		return perm&0o100 != 0
	case st.Gid == u.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// MkdirTemp is os.MkdirTemp for directories meant to hold a cluster's data
// directory: os.MkdirTemp makes them mode 0700, which the OS user that runs
// PostgreSQL for root could not enter, so MkdirTemp opens them to 0755. The
// caller removes the directory when done.
func MkdirTemp(dir, pattern string) (string, error) {
	path, err := os.MkdirTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return "", errors.Join(fmt.Errorf("open temporary directory %s: %w", path, err), os.Remove(path))
	}
	return path, nil
}
