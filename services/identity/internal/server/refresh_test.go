package server_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// A session keeps only the hash of its current refresh token, yet any
// older token of it, however old, is known for what it is: presenting one
// revokes the session, and one forged or mangled is refused without
// touching it.
func TestRefreshTokensOfEveryGenerationAreKnown(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	login := s.signUpAndLogin("demo", "chain@example.com")
	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(t, err)
	defer db.Close()
	stored := func(session string) (gen int64, hash []byte, revoked bool) {
		require.NoError(t, db.QueryRow(context.Background(),
			`SELECT refresh_generation, refresh_hash, revoke_time IS NOT NULL FROM demo.sessions WHERE id = $1`, session).Scan(&gen, &hash, &revoked))
		return gen, hash, revoked
	}
	refresh := func(tok string) (*identityv1.RefreshSessionResponse, error) {
		return s.auth.RefreshSession(in("demo"), &identityv1.RefreshSessionRequest{RefreshToken: tok})
	}

	chain := []string{login.GetRefreshToken()}
	for range 4 {
		next, err := refresh(chain[len(chain)-1])
		require.NoError(t, err)
		chain = append(chain, next.GetRefreshToken())
	}
	var id string
	current := sha256.Sum256([]byte(chain[4]))
	require.NoError(t, db.QueryRow(context.Background(), `SELECT id::text FROM demo.sessions WHERE refresh_hash = $1`, current[:]).Scan(&id),
		"the session keeps the SHA-256 of its current token")
	gen, _, revoked := stored(id)
	require.EqualValues(t, 4, gen)
	require.False(t, revoked)
	var plain int
	require.NoError(t, db.QueryRow(context.Background(),
		`SELECT count(*) FROM demo.sessions WHERE position($1::bytea in refresh_hash) > 0`, []byte(chain[4])).Scan(&plain))
	require.Zero(t, plain, "the token itself is stored nowhere")

	// Mangled or foreign tokens are refused and change nothing.
	for _, bad := range []string{
		chain[4][:len(chain[4])-2] + "AA",
		"x" + chain[4][1:],
		"not-a-token",
	} {
		_, err := refresh(bad)
		requireCode(t, err, codes.Unauthenticated)
	}
	gen, _, revoked = stored(id)
	require.EqualValues(t, 4, gen)
	require.False(t, revoked, "a token identity never minted must not end a session")

	// The login's token, rotated away four times, is reuse.
	_, err = refresh(chain[0])
	requireCode(t, err, codes.Unauthenticated)
	_, _, revoked = stored(id)
	require.True(t, revoked, "reusing any older token revokes the session")
	_, err = refresh(chain[4])
	requireCode(t, err, codes.Unauthenticated)

	// Logging out with an old token of a live session ends it too.
	other, err := s.auth.Login(in("demo"), loginRequest("chain@example.com", goodPassword))
	require.NoError(t, err)
	next, err := refresh(other.GetRefreshToken())
	require.NoError(t, err)
	_, err = s.auth.Logout(in("demo"), &identityv1.LogoutRequest{RefreshToken: other.GetRefreshToken()})
	require.NoError(t, err)
	_, err = refresh(next.GetRefreshToken())
	requireCode(t, err, codes.Unauthenticated)
}
