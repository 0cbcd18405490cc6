package server_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
)

// Every login adds a session row; identity deletes sessions that ended more
// than 30 days ago on start-up and every hour after.
func TestIdentitySweepsSessionsThatEndedLongAgo(t *testing.T) {
	s := startSystem(t, "demo")
	live := s.signUpAndLogin("demo", "sweep@example.com")
	old, err := s.auth.Login(in("demo"), loginRequest("sweep@example.com", goodPassword))
	require.NoError(t, err)
	_, err = s.auth.RefreshSession(in("demo"), &identityv1.RefreshSessionRequest{RefreshToken: old.GetRefreshToken()})
	require.NoError(t, err)
	_, err = s.auth.Logout(in("demo", old.GetAccessToken()), &identityv1.LogoutRequest{})
	require.NoError(t, err)

	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(t, err)
	defer db.Close()
	// The logout happened 40 days ago, as far as the database knows.
	tag, err := db.Exec(context.Background(), `UPDATE demo.sessions SET revoke_time = now() - interval '40 days' WHERE revoke_time IS NOT NULL`)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	count := func(sql string) int {
		var n int
		require.NoError(t, db.QueryRow(context.Background(), sql).Scan(&n))
		return n
	}
	require.Equal(t, 2, count(`SELECT count(*) FROM demo.sessions`))

	// A replica starting now sweeps at once.
	s.startReplica()
	registrytest.Eventually(t, "the session ended long ago to be deleted", func() bool {
		return count(`SELECT count(*) FROM demo.sessions WHERE revoke_time IS NOT NULL`) == 0
	})
	require.Equal(t, 1, count(`SELECT count(*) FROM demo.sessions`), "only the live session is left")
	// The live session is untouched and still refreshes.
	_, err = s.auth.RefreshSession(in("demo"), &identityv1.RefreshSessionRequest{RefreshToken: live.GetRefreshToken()})
	require.NoError(t, err)
}
