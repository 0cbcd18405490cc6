package server

import (
	"context"
	"log/slog"
	"net/http"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// currentUserJSONEntries bounds the memo of GET /v1/auth/me's answers:
// one per user's current record (a login changes it), well under a
// megabyte per thousand.
const currentUserJSONEntries = 10000

// serveCurrentUser answers GET /v1/auth/me (AuthService.GetCurrentUser)
// without the gateway's hop through in-process gRPC, which cost more than
// the check itself (issue 13): apps ask it on every start and page load.
// It makes the gRPC call's checks in the gRPC call's order and with its
// code: the host's tenant, active (the tenant interceptor's check), then
// the Guard with the gRPC server's policy and authenticators on the
// Authorization headers the gateway would have passed on (the token
// verified for this tenant, its session and user checked now, through the
// session cache), then the GetCurrentUser handler. The answer is the
// gateway's: grpc-gateway's default JSON, or the error as the gateway
// writes a gRPC status; the JSON of an answer given before is remembered
// (jsonMemo). The request keeps the gateway's access log line,
// HTTP metrics and span; the principal and a refusal's reason, which the
// gRPC call's log line carried, go on that line (never the token).
func (a *App) serveCurrentUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := activeTenantOf(a.resolver, r)
	if err == nil {
		ctx, err = a.guard.AuthorizeHeader(context.WithValue(ctx, tenantKey{}, t),
			identityv1.AuthService_GetCurrentUser_FullMethodName, restgateway.RequestAuthorization(r))
	}
	var resp *identityv1.GetCurrentUserResponse
	if err == nil {
		if p, ok := authn.PrincipalFrom(ctx); ok {
			restgateway.AddLogAttrs(ctx, slog.String("role", p.Role), slog.String("subject", p.Subject))
		}
		resp, err = a.srv.GetCurrentUser(ctx, &identityv1.GetCurrentUserRequest{})
	}
	var body []byte
	if err == nil {
		body, err = a.currentUserJSON.marshal(resp)
	}
	if err != nil {
		// As rpcserver's log of a failed call: the full error, causes
		// included, which the client does not see, and the reason.
		restgateway.AddLogAttrs(ctx, slog.String("error", err.Error()))
		if f, ok := fault.As(err); ok && f.Reason != "" {
			restgateway.AddLogAttrs(ctx, slog.String("reason", f.Reason))
		}
		restgateway.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", restJSON.ContentType(resp))
	_, _ = w.Write(body)
}
