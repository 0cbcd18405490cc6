package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

// Verify remembers genuine tokens; these tests show that a token verified
// once is refused again for everything that can make it unacceptable later.
func TestVerifiedTokenIsCheckedAgainOnEveryUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("it expires", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		iss := newIssuer(t, newPool(t), clk)
		tok := sign(t, iss)
		_, err := iss.Verify(tok)
		require.NoError(t, err)
		clk.Advance(token.DefaultAccessTTL + token.ClockLeeway)
		_, err = iss.Verify(tok)
		requireRefused(t, err, token.ReasonExpired)
	})

	t.Run("its key stops verifying once past delete_after", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t)
		clk := newClock()
		iss := newIssuer(t, pool, clk)
		tok := sign(t, iss)
		_, err := iss.Verify(tok)
		require.NoError(t, err)
		require.NoError(t, iss.Rotate(ctx, acmeUID))
		var deleteAfter time.Time
		require.NoError(t, pool.QueryRow(ctx,
			`SELECT delete_after FROM tenantry_identity.signing_keys WHERE kid = $1`, kidOf(t, tok)).Scan(&deleteAfter))
		clk.Set(deleteAfter)
		_, err = iss.Verify(tok)
		requireRefused(t, err, token.ReasonInvalid)
	})

	t.Run("a tampered copy of a verified token is refused", func(t *testing.T) {
		t.Parallel()
		iss := newIssuer(t, newPool(t), newClock())
		tok := sign(t, iss)
		_, err := iss.Verify(tok)
		require.NoError(t, err)
		_, err = iss.Verify(alterPayload(t, tok, func(c map[string]any) { c["sub"] = "someone-else" }))
		requireRefused(t, err, token.ReasonInvalid)
		_, err = iss.Verify(alterSignature(t, tok))
		requireRefused(t, err, token.ReasonInvalid)
	})

	t.Run("the tenant is still checked", func(t *testing.T) {
		t.Parallel()
		iss := newIssuer(t, newPool(t), newClock())
		tok, _, err := iss.Sign(ctx, "user-1", "acme", acmeUID, "session-1", nil)
		require.NoError(t, err)
		_, err = iss.VerifyForTenant(tok, acmeUID)
		require.NoError(t, err)
		_, err = iss.VerifyForTenant(tok, globexUID)
		requireRefused(t, err, token.ReasonWrongTenant)
	})

	t.Run("callers get their own roles", func(t *testing.T) {
		t.Parallel()
		iss := newIssuer(t, newPool(t), newClock())
		tok, _, err := iss.Sign(ctx, "user-1", "acme", acmeUID, "session-1", []string{"member"})
		require.NoError(t, err)
		first, err := iss.Verify(tok)
		require.NoError(t, err)
		first.Roles[0] = "admin"
		second, err := iss.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, []string{"member"}, second.Roles)
	})
}
