package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
)

// The table keeps a client as the domain gave it, and its checks refuse
// what the domain's rules refuse even when those rules are bypassed.
func TestOAuthClientsTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	hash := sha256.Sum256([]byte("ocs_secret"))
	client := func(id string) *account.OAuthClient {
		return &account.OAuthClient{
			ID: id, DisplayName: "Acme Web", Type: account.ClientConfidential,
			SecretHash: hash[:], SecretCreateTime: now,
			RedirectURIs: []string{"https://app.acme.example/cb"}, PostLogoutRedirectURIs: []string{"https://app.acme.example/bye"},
			GrantTypes: []account.GrantType{account.GrantAuthorizationCode, account.GrantRefreshToken},
			Scopes:     []string{"openid", "profile"}, FirstParty: true, AccessTokenLifetime: 10 * time.Minute,
			IDTokenAlg: account.SigningEdDSA, CreateTime: now, UpdateTime: now,
		}
	}

	t.Run("a client reads back as it was written", func(t *testing.T) {
		in := client("oc_00000000000000000000000000000001")
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.InsertOAuthClient(ctx, in) }))
		var out *account.OAuthClient
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
			var err error
			out, err = tx.OAuthClient(ctx, in.ID, false)
			return err
		}))
		require.True(t, out.CreateTime.Equal(in.CreateTime) && out.SecretCreateTime.Equal(in.SecretCreateTime))
		out.CreateTime, out.UpdateTime, out.SecretCreateTime = in.CreateTime, in.UpdateTime, in.SecretCreateTime
		require.Equal(t, in, out)

		stale := *out
		out.DisplayName = "Acme Web 2"
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.UpdateOAuthClient(ctx, out) }))
		err := f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.UpdateOAuthClient(ctx, &stale) })
		require.ErrorIs(t, err, account.ErrVersionMismatch)
	})

	refused := map[string]func(c *account.OAuthClient){
		"a public client with a secret":          func(c *account.OAuthClient) { c.Type = account.ClientPublic },
		"a confidential client without a secret": func(c *account.OAuthClient) { c.SecretHash, c.SecretCreateTime = nil, time.Time{} },
		"a public client with client_credentials": func(c *account.OAuthClient) {
			c.Type, c.SecretHash, c.SecretCreateTime, c.GrantTypes = account.ClientPublic, nil, time.Time{}, []account.GrantType{account.GrantClientCredentials}
		},
		"an unknown grant type":                         func(c *account.OAuthClient) { c.GrantTypes = []account.GrantType{"password"} },
		"no grant type":                                 func(c *account.OAuthClient) { c.GrantTypes = []account.GrantType{} },
		"a client id that identity did not make":        func(c *account.OAuthClient) { c.ID = "my-client" },
		"a secret hash that is not a SHA-256":           func(c *account.OAuthClient) { c.SecretHash = []byte("ocs_plaintext") },
		"an access token lifetime out of range":         func(c *account.OAuthClient) { c.AccessTokenLifetime = 2 * 24 * time.Hour },
		"an ID token algorithm identity does not offer": func(c *account.OAuthClient) { c.IDTokenAlg = "none" },
	}
	for name, change := range refused {
		t.Run(name+" is refused by the table", func(t *testing.T) {
			c := client("oc_00000000000000000000000000000002")
			change(c)
			err := f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.InsertOAuthClient(ctx, c) })
			require.ErrorContains(t, err, "violates check constraint")
		})
	}
}
