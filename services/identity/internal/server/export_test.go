package server

import (
	"context"

	"tenantry.dev/platform/grpcerr"
)

// VerifyClientSecret runs account.Manager.VerifyClientSecret, which the
// token endpoint is to use, in the tenant named by slug, and returns its
// error as a gRPC status would carry it: the tests check what a client
// secret opens before there is a token endpoint.
func (a *App) VerifyClientSecret(ctx context.Context, slug, clientID, secret string) error {
	t, err := a.resolver.BySlug(ctx, slug)
	if err == nil {
		_, err = a.accounts.VerifyClientSecret(ctx, t, clientID, secret)
	}
	if err != nil {
		return grpcerr.Error(err)
	}
	return nil
}
