package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
)

// TestPasskeyCeremonies: a ceremony is used once, not after its expiry,
// and swept once expired; a credential id is registered once.
func TestPasskeyCeremonies(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	u, _ := f.newUserWithSession(t)
	live, expired := randomHash(t), randomHash(t)
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		for _, c := range []*account.PasskeyCeremony{
			{TokenHash: live, Kind: account.CeremonyRegister, UserID: u.ID, Session: webauthn.SessionData{Challenge: "c1"}, CreateTime: now, ExpireTime: now.Add(time.Minute)},
			{TokenHash: expired, Kind: account.CeremonyLogin, Session: webauthn.SessionData{Challenge: "c2"}, CreateTime: now.Add(-time.Hour), ExpireTime: now.Add(-time.Minute)},
		} {
			if err := tx.InsertPasskeyCeremony(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}))
	use := func(hash []byte) (*account.PasskeyCeremony, error) {
		var c *account.PasskeyCeremony
		err := f.in(t, func(ctx context.Context, tx account.Tx) error {
			var err error
			c, err = tx.UsePasskeyCeremony(ctx, hash, now)
			return err
		})
		return c, err
	}
	c, err := use(live)
	require.NoError(t, err)
	require.Equal(t, u.ID, c.UserID)
	require.Equal(t, "c1", c.Session.Challenge)
	_, err = use(live)
	require.ErrorIs(t, err, account.ErrNotFound, "used once")
	_, err = use(expired)
	require.ErrorIs(t, err, account.ErrNotFound, "not after its expiry")

	var swept int64
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		var err error
		swept, err = tx.DeleteEndedPasskeyCeremonies(ctx, now)
		return err
	}))
	require.EqualValues(t, 1, swept, "only the expired one")

	p := &account.Passkey{ID: "8c7f9d8e-5a7c-4f5e-9e3a-1f2b3c4d5e6f", UserID: u.ID, CredentialID: []byte("cred"), RPID: "acme.localhost",
		DisplayName: "Key", CreateTime: now}
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.InsertPasskey(ctx, p) }))
	p.ID = "9c7f9d8e-5a7c-4f5e-9e3a-1f2b3c4d5e6f"
	err = f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.InsertPasskey(ctx, p) })
	require.ErrorIs(t, err, account.ErrPasskeyTaken)
}
