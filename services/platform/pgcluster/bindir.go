package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// BinDirEnv is the environment variable that names the directory holding the
// PostgreSQL server binaries. It wins over every other place FindBinDir looks,
// so a machine with several versions can pick one.
const BinDirEnv = "TENANTRY_PG_BIN"

// debianBinGlob matches the per-major-version binary directories of the
// Debian and Ubuntu packages, which do not put initdb or pg_ctl on PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// serverBinaries are the programs the package runs; a directory qualifies only
// when it holds all of them, because pg_ctl starts the postgres found beside it.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir returns the directory that holds initdb, pg_ctl and postgres:
// the one named by BinDirEnv when it is set, else the highest-version
// /usr/lib/postgresql/*/bin, else the directory of pg_ctl or initdb found on
// PATH (symbolic links resolved).
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinDirEnv, dir, err)
		}
		return dir, nil
	}
	if dir, ok := newestDebianBinDir(); ok {
		return dir, nil
	}
	for _, name := range []string{"pg_ctl", "initdb"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// A link such as /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl
		// must lead to the real directory, where postgres lives too.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		if dir := filepath.Dir(path); checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $" +
		BinDirEnv + ", " + debianBinGlob + " or PATH: install them (apt-get install postgresql) " +
		"or set " + BinDirEnv + " to their directory")
}

// newestDebianBinDir returns the complete binary directory of the highest
// PostgreSQL version installed the Debian way.
func newestDebianBinDir() (string, bool) {
	dirs, err := filepath.Glob(debianBinGlob)
	if err != nil {
		return "", false
	}
	dirs = slices.DeleteFunc(dirs, func(dir string) bool { return checkBinDir(dir) != nil })
	if len(dirs) == 0 {
		return "", false
	}
	// Compare versions numerically: "9.6" < "10" < "15".
	return slices.MaxFunc(dirs, func(a, b string) int {
		return slices.Compare(versionOf(a), versionOf(b))
	}), true
}

// versionOf parses the version directory of a Debian binary directory, such
// as 15 in /usr/lib/postgresql/15/bin, into its numeric components.
func versionOf(binDir string) []int {
	var version []int
	for part := range strings.SplitSeq(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		version = append(version, n)
	}
	return version
}

// checkBinDir reports which server binary, if any, is missing from dir.
func checkBinDir(dir string) error {
	for _, name := range serverBinaries {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("no %s in %s: %w", name, dir, err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s in %s is not an executable file", name, dir)
		}
	}
	return nil
}
