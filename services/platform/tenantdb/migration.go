package tenantdb

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered step of a component's tenant schema.
type Migration struct {
	// Version is the migration's number; a component's versions run 1, 2, 3…
	Version int
	// Name is the descriptive part of the file name, for logs.
	Name string
	// SQL is run as one simple-protocol Exec, so it may hold several
	// statements; it must not contain transaction control.
	SQL string
}

// migrationFileName is NNNN_name.sql: a number, an underscore, a lower-case
// name. The strict form keeps ordering obvious in a directory listing.
var migrationFileName = regexp.MustCompile(`^([0-9]+)_([a-z0-9][a-z0-9_]*)\.sql$`)

// LoadMigrations reads the migrations in dir of fsys (usually an embed.FS),
// one file per migration named like 0001_create_users.sql, and returns them
// ordered by version. Files not ending in .sql are ignored, so a README may
// sit beside them. Versions must run from 1 without gaps or duplicates,
// because a gap usually means a file was lost in a merge.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("tenantdb: read migrations directory %q: %w", dir, err)
	}
	var migrations []Migration
	for _, entry := range entries {
		if entry.IsDir() || !strings.HasSuffix(entry.Name(), ".sql") {
			continue
		}
		match := migrationFileName.FindStringSubmatch(entry.Name())
		if match == nil {
			return nil, fmt.Errorf("tenantdb: %w: file %q is not named like 0001_create_users.sql (number, underscore, lower-case name)", ErrInvalidMigrations, path.Join(dir, entry.Name()))
		}
		version, err := strconv.Atoi(match[1])
		if err != nil {
			return nil, fmt.Errorf("tenantdb: %w: file %q: version: %w", ErrInvalidMigrations, path.Join(dir, entry.Name()), err)
		}
		sql, err := fs.ReadFile(fsys, path.Join(dir, entry.Name()))
		if err != nil {
			return nil, fmt.Errorf("tenantdb: read migration %q: %w", path.Join(dir, entry.Name()), err)
		}
		migrations = append(migrations, Migration{Version: version, Name: match[2], SQL: string(sql)})
	}
	if len(migrations) == 0 {
		return nil, fmt.Errorf("tenantdb: %w: no .sql files in %q", ErrInvalidMigrations, dir)
	}
	slices.SortStableFunc(migrations, func(a, b Migration) int { return a.Version - b.Version })
	if err := validateMigrations(migrations); err != nil {
		return nil, err
	}
	return migrations, nil
}

// validateMigrations checks that migrations, in order, are numbered 1..n and
// each has SQL.
func validateMigrations(migrations []Migration) error {
	if len(migrations) == 0 {
		return fmt.Errorf("tenantdb: %w: none given", ErrInvalidMigrations)
	}
	for i, m := range migrations {
		want := i + 1
		switch {
		case m.Version == want:
		case i > 0 && m.Version == migrations[i-1].Version:
			return fmt.Errorf("tenantdb: %w: duplicate version %d (%q and %q)", ErrInvalidMigrations, m.Version, migrations[i-1].Name, m.Name)
		case m.Version > want:
			return fmt.Errorf("tenantdb: %w: version %d is missing (next is %d %q); versions must run from 1 without gaps", ErrInvalidMigrations, want, m.Version, m.Name)
		case m.Version < 1:
			return fmt.Errorf("tenantdb: %w: version %d %q; versions start at 1", ErrInvalidMigrations, m.Version, m.Name)
		default:
			return fmt.Errorf("tenantdb: %w: version %d %q out of order; want %d", ErrInvalidMigrations, m.Version, m.Name, want)
		}
		if strings.TrimSpace(m.SQL) == "" {
			return fmt.Errorf("tenantdb: %w: version %d %q has no SQL", ErrInvalidMigrations, m.Version, m.Name)
		}
	}
	return nil
}
