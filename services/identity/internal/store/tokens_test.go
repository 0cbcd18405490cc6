package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
)

// TestMFAChallengesKeepHowTheLoginBegan: a challenge's first step (its
// amr) comes back with it; other tokens, and a challenge inserted as a
// replica older than migration 0021 inserts it, have none.
func TestMFAChallengesKeepHowTheLoginBegan(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	u, _ := f.newUserWithSession(t)
	token := func(purpose account.Purpose, amr []string) *account.OneTimeToken {
		return &account.OneTimeToken{Hash: randomHash(t), Purpose: purpose, UserID: u.ID, Email: u.Email,
			CreateTime: now, ExpireTime: now.Add(time.Minute), AMR: amr}
	}
	federated, mailed, reset := token(account.PurposeMFAChallenge, account.AMRFederated),
		token(account.PurposeMFAChallenge, account.AMREmailCode), token(account.PurposeResetPassword, nil)
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		for _, tok := range []*account.OneTimeToken{federated, mailed, reset} {
			if err := tx.InsertToken(ctx, tok); err != nil {
				return err
			}
		}
		return nil
	}))
	older := randomHash(t)
	_, err := f.pool.Exec(context.Background(), `INSERT INTO acme.one_time_tokens (token_hash, purpose, user_id, email, create_time, expire_time)
		VALUES ($1, $2, $3, $4, $5, $6)`, older, string(account.PurposeMFAChallenge), u.ID, u.Email, now, now.Add(time.Minute))
	require.NoError(t, err, "the statement of a replica older than the column still works")

	read := func(hash []byte) *account.OneTimeToken {
		t.Helper()
		var tok *account.OneTimeToken
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
			var err error
			tok, err = tx.Token(ctx, hash)
			return err
		}))
		return tok
	}
	require.Equal(t, []string{"fed"}, read(federated.Hash).AMR)
	require.Equal(t, []string{"email"}, read(mailed.Hash).AMR)
	require.Empty(t, read(reset.Hash).AMR)
	old := read(older)
	require.Equal(t, account.PurposeMFAChallenge, old.Purpose)
	require.Empty(t, old.AMR, "taken for a password by VerifyMFA, as before")
}
