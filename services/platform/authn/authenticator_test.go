package authn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/authn"
)

func TestChain(t *testing.T) {
	t.Parallel()
	static, err := authn.NewStaticTokens(authn.Credential{Role: "operator", Token: "op-token"})
	require.NoError(t, err)
	broken := errors.New("identity database is down")
	var identityCalls int
	identity := authn.AuthenticatorFunc(func(_ context.Context, token string) (authn.Principal, error) {
		identityCalls++
		switch token {
		case "user-token":
			return authn.Principal{Role: "user", Subject: "user-42"}, nil
		case "broken":
			return authn.Principal{}, broken
		default:
			return authn.Principal{}, fmt.Errorf("identity: %w", authn.ErrUnknownToken)
		}
	})
	chained := authn.Chain(static, nil, identity)

	t.Run("static tokens are tried first", func(t *testing.T) {
		identityCalls = 0
		p, err := chained.Authenticate(context.Background(), "op-token")
		require.NoError(t, err)
		require.Equal(t, "operator", p.Role)
		require.Zero(t, identityCalls)
	})

	t.Run("an unknown static token falls through to the next authenticator", func(t *testing.T) {
		p, err := chained.Authenticate(context.Background(), "user-token")
		require.NoError(t, err)
		require.Equal(t, authn.Principal{Role: "user", Subject: "user-42"}, p)
	})

	t.Run("a token no authenticator knows is unknown", func(t *testing.T) {
		_, err := chained.Authenticate(context.Background(), "nobody")
		require.ErrorIs(t, err, authn.ErrUnknownToken)
	})

	t.Run("a failing authenticator stops the chain with its error", func(t *testing.T) {
		_, err := chained.Authenticate(context.Background(), "broken")
		require.ErrorIs(t, err, broken)
	})

	t.Run("an empty chain knows no token", func(t *testing.T) {
		_, err := authn.Chain().Authenticate(context.Background(), "op-token")
		require.ErrorIs(t, err, authn.ErrUnknownToken)
	})
}
