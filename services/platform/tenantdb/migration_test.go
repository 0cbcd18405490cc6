package tenantdb_test

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/tenantdb"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	sql := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

	t.Run("reads numbered files in version order and ignores other files", func(t *testing.T) {
		t.Parallel()
		fsys := fstest.MapFS{
			"m/0002_add_email.sql":    sql("ALTER TABLE users ADD COLUMN email text;"),
			"m/0001_create_users.sql": sql("CREATE TABLE users (id bigint);"),
			"m/10_later.sql":          sql("SELECT 10;"),
			"m/0003_c.sql":            sql("SELECT 3;"),
			"m/0004_d.sql":            sql("SELECT 4;"),
			"m/0005_e.sql":            sql("SELECT 5;"),
			"m/0006_f.sql":            sql("SELECT 6;"),
			"m/0007_g.sql":            sql("SELECT 7;"),
			"m/0008_h.sql":            sql("SELECT 8;"),
			"m/0009_i.sql":            sql("SELECT 9;"),
			"m/README.md":             sql("not a migration"),
			"m/sub/0001_nested.sql":   sql("SELECT 'ignored';"),
		}
		migrations, err := tenantdb.LoadMigrations(fsys, "m")
		require.NoError(t, err)
		require.Len(t, migrations, 10)
		for i, m := range migrations {
			require.Equal(t, i+1, m.Version)
		}
		require.Equal(t, tenantdb.Migration{Version: 1, Name: "create_users", SQL: "CREATE TABLE users (id bigint);"}, migrations[0])
		require.Equal(t, "later", migrations[9].Name)
	})

	t.Run("reads an embedded directory", func(t *testing.T) {
		t.Parallel()
		migrations := loadTestMigrations(t)
		require.Len(t, migrations, 3)
		require.Equal(t, []string{"create_users", "create_orders", "add_user_email"},
			[]string{migrations[0].Name, migrations[1].Name, migrations[2].Name})
	})

	tests := []struct {
		name    string
		files   fstest.MapFS
		wantErr string
	}{
		{
			name:    "a gap in the numbering is rejected",
			files:   fstest.MapFS{"m/0001_a.sql": sql("SELECT 1;"), "m/0003_c.sql": sql("SELECT 3;")},
			wantErr: "version 2 is missing",
		},
		{
			name:    "a duplicate version is rejected",
			files:   fstest.MapFS{"m/0001_a.sql": sql("SELECT 1;"), "m/001_b.sql": sql("SELECT 1;")},
			wantErr: "duplicate version 1",
		},
		{
			name:    "numbering that does not start at 1 is rejected",
			files:   fstest.MapFS{"m/0002_b.sql": sql("SELECT 2;")},
			wantErr: "version 1 is missing",
		},
		{
			name:    "version zero is rejected",
			files:   fstest.MapFS{"m/0000_a.sql": sql("SELECT 0;"), "m/0001_b.sql": sql("SELECT 1;")},
			wantErr: "versions start at 1",
		},
		{
			name:    "a name without a number is rejected",
			files:   fstest.MapFS{"m/create_users.sql": sql("SELECT 1;")},
			wantErr: `"m/create_users.sql" is not named like`,
		},
		{
			name:    "a dash instead of an underscore is rejected",
			files:   fstest.MapFS{"m/0001-create_users.sql": sql("SELECT 1;")},
			wantErr: "is not named like",
		},
		{
			name:    "upper-case names are rejected",
			files:   fstest.MapFS{"m/0001_CreateUsers.sql": sql("SELECT 1;")},
			wantErr: "is not named like",
		},
		{
			name:    "an empty migration is rejected",
			files:   fstest.MapFS{"m/0001_a.sql": sql("  \n")},
			wantErr: `version 1 "a" has no SQL`,
		},
		{
			name:    "a directory without migrations is rejected",
			files:   fstest.MapFS{"m/README.md": sql("hello")},
			wantErr: `no .sql files in "m"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tenantdb.LoadMigrations(tt.files, "m")
			require.ErrorIs(t, err, tenantdb.ErrInvalidMigrations)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("a missing directory is reported", func(t *testing.T) {
		t.Parallel()
		_, err := tenantdb.LoadMigrations(fstest.MapFS{}, "nope")
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}
