package tenantdb

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePlacements(t *testing.T) {
	t.Parallel()
	got, problems := ParsePlacements("P", " eu=postgres://eu/db, us=postgresql://us/db ,", "postgres://main/db")
	require.Empty(t, problems)
	require.Equal(t, map[string]string{"default": "postgres://main/db", "eu": "postgres://eu/db", "us": "postgresql://us/db"}, got)

	_, problems = ParsePlacements("P", "default=postgres://x/y,bad,EU=postgres://a/b,eu=mysql://a/b,eu=postgres://a/b,eu=postgres://c/d", "postgres://main/db")
	joined := ""
	for _, p := range problems {
		joined += p + "\n"
	}
	for _, want := range []string{`"default" is the DATABASE_URL placement`, `"bad" is not name=postgres-url`,
		`placement name "EU"`, `"eu=mysql://a/b" is not name=postgres-url`, `placement "eu" is listed twice`} {
		require.Contains(t, joined, want)
	}
}
