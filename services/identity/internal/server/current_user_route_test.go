package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/restgateway"
)

// restAnswer is an HTTP answer as a client sees it.
type restAnswer struct {
	status int
	header http.Header
	body   []byte
}

// getMe sends GET /v1/auth/me for host with the given Authorization
// headers (none, one, or several) and other header pairs.
func (s *system) getMe(host string, authorization []string, headers ...string) restAnswer {
	s.t.Helper()
	addr := s.identity.HTTPAddr().String()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/auth/me", nil)
	require.NoError(s.t, err)
	_, port, _ := strings.Cut(addr, ":")
	req.Host = host + ":" + port
	for _, v := range authorization {
		req.Header.Add("Authorization", v)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return restAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// gatewayAnswer calls GetCurrentUser over gRPC with the metadata the REST
// gateway sends for a request to host with these Authorization headers,
// and returns what the gateway makes of the gRPC answer: the message in
// grpc-gateway's default JSON (restgateway registers no marshaler of its
// own), or the status through restgateway's error handler.
func (s *system) gatewayAnswer(host string, authorization []string) restAnswer {
	s.t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant-host", host)
	for _, v := range authorization {
		// grpc-gateway passes on only the values gRPC metadata can carry.
		if !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
		}
	}
	resp, err := s.auth.GetCurrentUser(ctx, &identityv1.GetCurrentUserRequest{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/auth/me", nil)
	if err != nil {
		restgateway.WriteError(rec, req, err)
		return restAnswer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	_, marshaler := runtime.MarshalerForRequest(runtime.NewServeMux(), req)
	body, err := marshaler.Marshal(resp)
	require.NoError(s.t, err)
	rec.Header().Set("Content-Type", marshaler.ContentType(resp))
	return restAnswer{status: http.StatusOK, header: rec.Header(), body: body}
}

// grpcCurrentUserCalls is how many GetCurrentUser calls identity's gRPC
// server has started, by its metrics: a REST call through the gateway is
// one too, since the gateway calls the method over in-process gRPC.
func (s *system) grpcCurrentUserCalls() float64 {
	s.t.Helper()
	total := 0.0
	for _, m := range s.scrape()["grpc_server_started_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "grpc_method" && l.GetValue() == "GetCurrentUser" {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// GET /v1/auth/me is served without the gateway's in-process gRPC hop: for
// every token and host it must answer exactly what the gateway made of
// GetCurrentUser's answer, status, JSON and error bodies alike.
func TestCurrentUserOverRESTIsGetCurrentUser(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo", "other", "paused")
	ann := s.signUpAndLogin("demo", "ann@example.com")
	gone := s.signUpAndLogin("demo", "gone@example.com")
	_, err := s.auth.Logout(in("demo", gone.GetAccessToken()), &identityv1.LogoutRequest{RefreshToken: gone.GetRefreshToken()})
	require.NoError(t, err)
	deleted := s.signUpAndLogin("demo", "deleted@example.com")
	_, err = s.users.DeleteUser(asOperator("demo"), &identityv1.DeleteUserRequest{Name: deleted.GetUser().GetName()})
	require.NoError(t, err)
	revoked := s.signUpAndLogin("demo", "revoked@example.com")
	sessions, err := s.auth.ListSessions(in("demo", revoked.GetAccessToken()), &identityv1.ListSessionsRequest{})
	require.NoError(t, err)
	require.Len(t, sessions.GetSessions(), 1)
	_, err = s.auth.RevokeSession(in("demo", revoked.GetAccessToken()), &identityv1.RevokeSessionRequest{SessionId: sessions.GetSessions()[0].GetId()})
	require.NoError(t, err)
	paused := s.signUpAndLogin("paused", "paused@example.com")
	s.registry.Suspend("paused")
	registrytestEventually(t, "identity to learn that paused is suspended", func() bool {
		_, err := s.auth.GetCurrentUser(in("paused", paused.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		return requireCodeIs(err, codes.FailedPrecondition)
	})
	bearer := func(tok string) []string { return []string{"Bearer " + tok} }

	for _, c := range []struct {
		name          string
		host          string
		authorization []string
		status        int
	}{
		{"a user's token on its tenant's host says who is logged in", "demo.localhost", bearer(ann.GetAccessToken()), http.StatusOK},
		{"the scheme is case-insensitive", "demo.localhost", []string{"bearer " + ann.GetAccessToken()}, http.StatusOK},
		{"no token is refused", "demo.localhost", nil, http.StatusUnauthorized},
		{"an empty bearer is refused", "demo.localhost", []string{"Bearer "}, http.StatusUnauthorized},
		{"a Basic credential is refused", "demo.localhost", []string{"Basic YW5uOnB3"}, http.StatusUnauthorized},
		{"two Authorization headers are refused", "demo.localhost", append(bearer(ann.GetAccessToken()), bearer(ann.GetAccessToken())...), http.StatusUnauthorized},
		{"a header gRPC metadata cannot carry is dropped, as the gateway drops it", "demo.localhost", []string{"Bearer t\u00f6ken"}, http.StatusUnauthorized},
		{"a token that is no JWT is refused", "demo.localhost", bearer("not-a-token"), http.StatusUnauthorized},
		{"a tampered token is refused", "demo.localhost", bearer(ann.GetAccessToken()[:len(ann.GetAccessToken())-4] + "AAAA"), http.StatusUnauthorized},
		{"a logged-out session's token is refused", "demo.localhost", bearer(gone.GetAccessToken()), http.StatusUnauthorized},
		{"a revoked session's token is refused", "demo.localhost", bearer(revoked.GetAccessToken()), http.StatusUnauthorized},
		{"a deleted user's token is refused", "demo.localhost", bearer(deleted.GetAccessToken()), http.StatusUnauthorized},
		{"a token on another tenant's host is refused", "other.localhost", bearer(ann.GetAccessToken()), http.StatusUnauthorized},
		{"the operator's token is no user's", "demo.localhost", bearer(registrytest.OperatorToken), http.StatusForbidden},
		{"a service's token is no user's", "demo.localhost", bearer(registrytest.ServiceToken), http.StatusForbidden},
		{"a suspended tenant is refused before the token is looked at", "paused.localhost", bearer(paused.GetAccessToken()), http.StatusBadRequest},
		{"a host that is no tenant's is refused", "nobody.localhost", bearer(ann.GetAccessToken()), http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := s.gatewayAnswer(c.host, c.authorization)
			got := s.getMe(c.host, c.authorization)
			require.Equal(t, c.status, want.status, "gRPC's answer: %s", want.body)
			require.Equal(t, want.status, got.status, "REST %s\ngRPC %s", got.body, want.body)
			require.Equal(t, string(want.body), string(got.body), "the body, byte for byte")
			again := s.getMe(c.host, c.authorization)
			require.Equal(t, string(want.body), string(again.body), "the body asked again (an answer's JSON is remembered)")
			for _, h := range []string{"Content-Type", "WWW-Authenticate", "X-Content-Type-Options"} {
				require.Equal(t, want.header.Values(h), got.header.Values(h), h)
			}
		})
	}

	t.Run("the gateway's JSON names and unpopulated fields", func(t *testing.T) {
		got := s.getMe("demo.localhost", bearer(ann.GetAccessToken()))
		require.Equal(t, http.StatusOK, got.status, "%s", got.body)
		for _, key := range []string{`"email":"ann@example.com"`, `"emailVerified":`, `"displayName":`, `"createTime":`, `"roles":`, `"disabled":false`} {
			require.Contains(t, string(got.body), key)
		}
	})

	t.Run("the route no longer goes through the gateway's gRPC hop", func(t *testing.T) {
		before := s.grpcCurrentUserCalls()
		for range 3 {
			require.Equal(t, http.StatusOK, s.getMe("demo.localhost", bearer(ann.GetAccessToken())).status)
		}
		require.Equal(t, http.StatusUnauthorized, s.getMe("demo.localhost", nil).status)
		require.Equal(t, before, s.grpcCurrentUserCalls(), "REST calls started GetCurrentUser over gRPC")
		// The counter is live: a gRPC call moves it.
		_, err := s.auth.GetCurrentUser(in("demo", ann.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, before+1, s.grpcCurrentUserCalls())
	})
}
