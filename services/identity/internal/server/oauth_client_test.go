package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/readmetour"
)

// webAppClient is a valid confidential client whose users sign in.
func webAppClient(name string) *identityv1.OAuthClient {
	return &identityv1.OAuthClient{
		DisplayName:  name,
		Type:         identityv1.OAuthClient_TYPE_CONFIDENTIAL,
		RedirectUris: []string{"https://app.example.com/callback", "http://localhost:3000/callback"},
		GrantTypes: []identityv1.OAuthClient_GrantType{
			identityv1.OAuthClient_GRANT_TYPE_AUTHORIZATION_CODE, identityv1.OAuthClient_GRANT_TYPE_REFRESH_TOKEN,
		},
		AllowedScopes: []string{"openid", "profile", "email", "offline_access", "notes:read"},
	}
}

// TestOAuthClientRegistry drives OAuthClientService through the real
// system: who may register clients, what is stored of their secrets, how
// tenants are kept apart, updates, rotation, listing and refusals.
func TestOAuthClientRegistry(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	clients := identityv1.NewOAuthClientServiceClient(s.conn)
	adminA := s.makeAdmin("alpha", "admin@alpha.example")
	adminB := s.makeAdmin("beta", "admin@beta.example")
	plain := s.signUpAndLogin("alpha", "plain@alpha.example")
	asAdminA, asAdminB := in("alpha", adminA.GetAccessToken()), in("beta", adminB.GetAccessToken())
	ctx := context.Background()
	db, err := pgxpool.New(ctx, s.registry.DBURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	table := func(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	verify := func(tenant, clientID, secret string) error {
		return s.identity.VerifyClientSecret(ctx, tenant, clientID, secret)
	}

	var (
		web    *identityv1.OAuthClient
		secret string
	)
	t.Run("a tenant admin registers a confidential client and sees its secret once", func(t *testing.T) {
		resp, err := clients.CreateOAuthClient(asAdminA, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Alpha Web")})
		require.NoError(t, err)
		web, secret = resp.GetOauthClient(), resp.GetClientSecret()
		require.Regexp(t, `^oc_[0-9a-f]{32}$`, web.GetClientId())
		require.Equal(t, "oauthClients/"+web.GetClientId(), web.GetName())
		require.True(t, strings.HasPrefix(secret, "ocs_"), "secret %q", secret)
		require.Equal(t, identityv1.OAuthClient_TYPE_CONFIDENTIAL, web.GetType())
		require.Equal(t, []string{"email", "notes:read", "offline_access", "openid", "profile"}, web.GetAllowedScopes())
		require.Equal(t, identityv1.OAuthClient_SIGNING_ALGORITHM_RS256, web.GetIdTokenSignedResponseAlg(), "RS256 unless chosen")
		require.NotNil(t, web.GetSecretCreateTime())
		require.NotEmpty(t, web.GetEtag())
		require.NoError(t, verify("alpha", web.GetClientId(), secret))

		got, err := clients.GetOAuthClient(asAdminA, &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		require.NoError(t, err)
		require.True(t, proto.Equal(web, got.GetOauthClient()), "the client read back is not the client created:\n%v\n%v", web, got.GetOauthClient())
	})

	t.Run("only the secret's SHA-256 is stored, and nowhere the secret", func(t *testing.T) {
		var hash []byte
		var row string
		require.NoError(t, db.QueryRow(ctx, `SELECT secret_hash, row_to_json(c)::text FROM `+table("alpha", "oauth_clients")+` c WHERE client_id = $1`,
			web.GetClientId()).Scan(&hash, &row))
		want := sha256.Sum256([]byte(secret))
		require.Equal(t, want[:], hash)
		require.NotContains(t, row, secret)
		require.NotContains(t, row, strings.TrimPrefix(secret, "ocs_"))
		var leaks int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM `+table("alpha", "audit_log")+` WHERE strpos(details::text, $1) > 0`,
			strings.TrimPrefix(secret, "ocs_")).Scan(&leaks))
		require.Zero(t, leaks, "the secret is in the audit log")
		require.Error(t, verify("alpha", web.GetClientId(), secret+"x"))
		require.Error(t, verify("alpha", web.GetClientId(), ""))
	})

	t.Run("a public client gets no secret and cannot be given one", func(t *testing.T) {
		spa := webAppClient("Alpha SPA")
		spa.Type = identityv1.OAuthClient_TYPE_PUBLIC
		resp, err := clients.CreateOAuthClient(asAdminA, &identityv1.CreateOAuthClientRequest{OauthClient: spa})
		require.NoError(t, err)
		require.Empty(t, resp.GetClientSecret())
		require.Nil(t, resp.GetOauthClient().GetSecretCreateTime())
		var noHash bool
		require.NoError(t, db.QueryRow(ctx, `SELECT secret_hash IS NULL FROM `+table("alpha", "oauth_clients")+` WHERE client_id = $1`,
			resp.GetOauthClient().GetClientId()).Scan(&noHash))
		require.True(t, noHash)
		_, err = clients.RotateOAuthClientSecret(asAdminA, &identityv1.RotateOAuthClientSecretRequest{Name: resp.GetOauthClient().GetName()})
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "OAUTH_CLIENT_PUBLIC", reasonOf(err))
		require.Error(t, verify("alpha", resp.GetOauthClient().GetClientId(), "ocs_anything"), "a public client authenticated with a secret")

		spa.GrantTypes = append(spa.GrantTypes, identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS)
		_, err = clients.CreateOAuthClient(asAdminA, &identityv1.CreateOAuthClientRequest{OauthClient: spa})
		requireCode(t, err, codes.InvalidArgument)
		reason, fields := refusalOf(err)
		require.Equal(t, "GRANT_TYPE_NOT_ALLOWED", reason)
		require.Equal(t, []string{"oauth_client.grant_types[2]"}, fields)
	})

	t.Run("users who are not the tenant's admins are refused", func(t *testing.T) {
		for name, c := range map[string]struct {
			ctx  context.Context
			code codes.Code
		}{
			"a user":                 {in("alpha", plain.GetAccessToken()), codes.PermissionDenied},
			"the service credential": {in("alpha", registrytest.ServiceToken), codes.PermissionDenied},
			"nobody":                 {in("alpha"), codes.Unauthenticated},
			"beta's admin in alpha":  {in("alpha", adminB.GetAccessToken()), codes.Unauthenticated},
		} {
			_, err := clients.CreateOAuthClient(c.ctx, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Sneaky")})
			requireCode(t, err, c.code)
			_, err = clients.ListOAuthClients(c.ctx, &identityv1.ListOAuthClientsRequest{})
			requireCode(t, err, c.code)
			_, err = clients.RotateOAuthClientSecret(c.ctx, &identityv1.RotateOAuthClientSecretRequest{Name: web.GetName()})
			require.Error(t, err, name)
			requireCode(t, err, c.code)
		}
		require.NoError(t, verify("alpha", web.GetClientId(), secret), "a refused rotation changed the secret")
	})

	t.Run("another tenant's admin can neither see nor touch the client", func(t *testing.T) {
		_, err := clients.GetOAuthClient(asAdminB, &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		require.Equal(t, "OAUTH_CLIENT_NOT_FOUND", reasonOf(err))
		_, err = clients.UpdateOAuthClient(asAdminB, &identityv1.UpdateOAuthClientRequest{
			OauthClient: &identityv1.OAuthClient{Name: web.GetName(), Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
		})
		requireCode(t, err, codes.NotFound)
		_, err = clients.RotateOAuthClientSecret(asAdminB, &identityv1.RotateOAuthClientSecretRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		_, err = clients.DeleteOAuthClient(asAdminB, &identityv1.DeleteOAuthClientRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		list, err := clients.ListOAuthClients(asAdminB, &identityv1.ListOAuthClientsRequest{})
		require.NoError(t, err)
		require.Empty(t, list.GetOauthClients())
		require.Error(t, verify("beta", web.GetClientId(), secret), "alpha's client authenticated in beta")
		require.NoError(t, verify("alpha", web.GetClientId(), secret), "beta's attempts changed alpha's client")
	})

	t.Run("the operator sees and changes the tenant's clients", func(t *testing.T) {
		got, err := clients.GetOAuthClient(asOperator("alpha"), &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		require.NoError(t, err)
		require.Equal(t, web.GetClientId(), got.GetOauthClient().GetClientId())
		_, err = clients.GetOAuthClient(asOperator("beta"), &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		resp, err := clients.UpdateOAuthClient(asOperator("alpha"), &identityv1.UpdateOAuthClientRequest{
			OauthClient: &identityv1.OAuthClient{Name: web.GetName(), FirstParty: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"first_party"}},
		})
		require.NoError(t, err)
		require.True(t, resp.GetOauthClient().GetFirstParty())
		web = resp.GetOauthClient()
	})

	t.Run("an update changes the fields in its mask and nothing else", func(t *testing.T) {
		change := webAppClient("Alpha Web, renamed")
		change.Name, change.Etag = web.GetName(), web.GetEtag()
		change.RedirectUris = []string{"https://elsewhere.example/cb"} // not in the mask
		change.AccessTokenLifetime = durationpb.New(5 * time.Minute)
		change.IdTokenSignedResponseAlg = identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA
		resp, err := clients.UpdateOAuthClient(asAdminA, &identityv1.UpdateOAuthClientRequest{
			OauthClient: change,
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"display_name", "access_token_lifetime", "id_token_signed_response_alg"}},
		})
		require.NoError(t, err)
		got := resp.GetOauthClient()
		require.Equal(t, "Alpha Web, renamed", got.GetDisplayName())
		require.Equal(t, 5*time.Minute, got.GetAccessTokenLifetime().AsDuration())
		require.Equal(t, identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA, got.GetIdTokenSignedResponseAlg())
		require.Equal(t, web.GetRedirectUris(), got.GetRedirectUris(), "a field outside the mask changed")
		require.True(t, got.GetFirstParty(), "a field outside the mask changed")
		require.NotEqual(t, web.GetEtag(), got.GetEtag())
		require.NoError(t, verify("alpha", web.GetClientId(), secret), "an update changed the secret")

		_, err = clients.UpdateOAuthClient(asAdminA, &identityv1.UpdateOAuthClientRequest{
			OauthClient: change, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
		})
		requireCode(t, err, codes.Aborted)
		require.Equal(t, "ETAG_MISMATCH", reasonOf(err), "an update with the etag read before another update went through")
		web = got

		for name, c := range map[string]struct {
			paths  []string
			reason string
		}{
			"no mask":         {nil, "UPDATE_MASK_REQUIRED"},
			"the type":        {[]string{"type"}, "UPDATE_MASK_INVALID"},
			"an output field": {[]string{"client_id"}, "UPDATE_MASK_INVALID"},
		} {
			_, err := clients.UpdateOAuthClient(asAdminA, &identityv1.UpdateOAuthClientRequest{
				OauthClient: &identityv1.OAuthClient{Name: web.GetName(), Type: identityv1.OAuthClient_TYPE_PUBLIC}, UpdateMask: &fieldmaskpb.FieldMask{Paths: c.paths},
			})
			requireCode(t, err, codes.InvalidArgument)
			require.Equal(t, c.reason, reasonOf(err), name)
		}

		// The client as it would be is checked as a whole: dropping the
		// user grants leaves redirect URIs and user scopes without use.
		_, err = clients.UpdateOAuthClient(asAdminA, &identityv1.UpdateOAuthClientRequest{
			OauthClient: &identityv1.OAuthClient{Name: web.GetName(), GrantTypes: []identityv1.OAuthClient_GrantType{identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS}},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"grant_types"}},
		})
		requireCode(t, err, codes.InvalidArgument)
		reason, fields := refusalOf(err)
		require.Equal(t, "REDIRECT_URI_UNUSED", reason)
		require.Equal(t, []string{"oauth_client.redirect_uris", "oauth_client.allowed_scopes[0]", "oauth_client.allowed_scopes[2]",
			"oauth_client.allowed_scopes[3]", "oauth_client.allowed_scopes[4]"}, fields, "the redirect URIs, and email, offline_access, openid, profile")
		got2, err := clients.GetOAuthClient(asAdminA, &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		require.NoError(t, err)
		require.True(t, proto.Equal(web, got2.GetOauthClient()), "a refused update changed the client")
	})

	t.Run("a disabled client does not authenticate", func(t *testing.T) {
		for _, disabled := range []bool{true, false} {
			resp, err := clients.UpdateOAuthClient(asAdminA, &identityv1.UpdateOAuthClientRequest{
				OauthClient: &identityv1.OAuthClient{Name: web.GetName(), Disabled: disabled}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
			})
			require.NoError(t, err)
			require.Equal(t, disabled, resp.GetOauthClient().GetDisabled())
			if disabled {
				requireCode(t, verify("alpha", web.GetClientId(), secret), codes.Unauthenticated)
			} else {
				require.NoError(t, verify("alpha", web.GetClientId(), secret))
			}
		}
	})

	t.Run("rotating the secret ends the old one at once", func(t *testing.T) {
		resp, err := clients.RotateOAuthClientSecret(asAdminA, &identityv1.RotateOAuthClientSecretRequest{Name: web.GetName()})
		require.NoError(t, err)
		fresh := resp.GetClientSecret()
		require.True(t, strings.HasPrefix(fresh, "ocs_"))
		require.NotEqual(t, secret, fresh)
		err = verify("alpha", web.GetClientId(), secret)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "INVALID_CLIENT", reasonOf(err))
		require.NoError(t, verify("alpha", web.GetClientId(), fresh))
		require.True(t, resp.GetOauthClient().GetSecretCreateTime().AsTime().After(web.GetSecretCreateTime().AsTime()))
		var hash []byte
		require.NoError(t, db.QueryRow(ctx, `SELECT secret_hash FROM `+table("alpha", "oauth_clients")+` WHERE client_id = $1`, web.GetClientId()).Scan(&hash))
		want := sha256.Sum256([]byte(fresh))
		require.Equal(t, want[:], hash)
		secret, web = fresh, resp.GetOauthClient()
	})

	t.Run("bad redirect URIs are refused all at once, and nothing is registered", func(t *testing.T) {
		before, err := clients.ListOAuthClients(asAdminA, &identityv1.ListOAuthClientsRequest{})
		require.NoError(t, err)
		bad := webAppClient("Alpha Bad")
		bad.RedirectUris = []string{
			"https://app.example.com/ok",
			"http://app.example.com/insecure",
			"https://app.example.com/cb#fragment",
			"com.example.app:/native",
			"https://*.example.com/wildcard",
			"/relative",
		}
		bad.PostLogoutRedirectUris = []string{"javascript:alert(1)"}
		_, err = clients.CreateOAuthClient(asAdminA, &identityv1.CreateOAuthClientRequest{OauthClient: bad})
		st := requireCode(t, err, codes.InvalidArgument)
		reason, fields := refusalOf(err)
		require.Equal(t, "REDIRECT_URI_INSECURE", reason)
		require.Equal(t, []string{
			"oauth_client.redirect_uris[1]", "oauth_client.redirect_uris[2]", "oauth_client.redirect_uris[3]",
			"oauth_client.redirect_uris[4]", "oauth_client.redirect_uris[5]", "oauth_client.post_logout_redirect_uris[0]",
		}, fields)
		require.Contains(t, st.Message(), "use https")
		after, err := clients.ListOAuthClients(asAdminA, &identityv1.ListOAuthClientsRequest{})
		require.NoError(t, err)
		require.Len(t, after.GetOauthClients(), len(before.GetOauthClients()))
	})

	t.Run("clients are listed a page at a time, oldest first", func(t *testing.T) {
		var want []string
		for _, name := range []string{"One", "Two", "Three", "Four", "Five"} {
			resp, err := clients.CreateOAuthClient(asAdminB, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Beta " + name)})
			require.NoError(t, err)
			want = append(want, resp.GetOauthClient().GetDisplayName())
		}
		var (
			got   []string
			token string
			pages int
		)
		for {
			resp, err := clients.ListOAuthClients(asAdminB, &identityv1.ListOAuthClientsRequest{PageSize: 2, PageToken: token})
			require.NoError(t, err)
			pages++
			require.LessOrEqual(t, len(resp.GetOauthClients()), 2)
			for _, c := range resp.GetOauthClients() {
				got = append(got, c.GetDisplayName())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		require.Equal(t, want, got)
		require.Equal(t, 3, pages)

		_, err := clients.ListOAuthClients(asAdminB, &identityv1.ListOAuthClientsRequest{PageToken: "not-a-token"})
		requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "INVALID_PAGE_TOKEN", reasonOf(err))
		_, err = clients.ListOAuthClients(asAdminB, &identityv1.ListOAuthClientsRequest{PageSize: -1})
		requireCode(t, err, codes.InvalidArgument)
	})

	t.Run("a deleted client is gone", func(t *testing.T) {
		_, err := clients.DeleteOAuthClient(asAdminA, &identityv1.DeleteOAuthClientRequest{Name: web.GetName()})
		require.NoError(t, err)
		_, err = clients.GetOAuthClient(asAdminA, &identityv1.GetOAuthClientRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		_, err = clients.DeleteOAuthClient(asAdminA, &identityv1.DeleteOAuthClientRequest{Name: web.GetName()})
		requireCode(t, err, codes.NotFound)
		requireCode(t, verify("alpha", web.GetClientId(), secret), codes.Unauthenticated)
		_, err = clients.GetOAuthClient(asAdminA, &identityv1.GetOAuthClientRequest{Name: "oauthClients/42"})
		requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "OAUTH_CLIENT_NAME_INVALID", reasonOf(err))
	})

	t.Run("every change is in the audit log with who made it", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT event, actor FROM `+table("alpha", "audit_log")+`
			WHERE details->>'client_id' = $1 ORDER BY id`, web.GetClientId())
		require.NoError(t, err)
		var got []string
		for rows.Next() {
			var event, actor string
			require.NoError(t, rows.Scan(&event, &actor))
			got = append(got, event+" by "+actor)
		}
		require.NoError(t, rows.Err())
		admin := adminA.GetUser().GetName()
		require.Equal(t, []string{
			"oauth_client.created by " + admin,
			"oauth_client.updated by operator",
			"oauth_client.updated by " + admin,
			"oauth_client.updated by " + admin,
			"oauth_client.updated by " + admin,
			"oauth_client.secret_rotated by " + admin,
			"oauth_client.deleted by " + admin,
		}, got)
	})
}

// The REST mapping of OAuthClientService: the tenant is the host.
func TestOAuthClientsOverREST(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	admin := "Bearer " + s.makeAdmin("alpha", "admin@alpha.example").GetAccessToken()
	op := "Bearer " + registrytest.OperatorToken
	asJSON := []string{"Content-Type", "application/json"}

	code, body := s.rest(http.MethodPost, "alpha.localhost", "/v1/oauthClients",
		`{"displayName":"Alpha CLI","type":"TYPE_PUBLIC","redirectUris":["http://127.0.0.1/callback","com.alpha.cli:/callback"],
		  "grantTypes":["GRANT_TYPE_AUTHORIZATION_CODE"],"allowedScopes":["openid"],"accessTokenLifetime":"600s"}`,
		append([]string{"Authorization", admin}, asJSON...)...)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var created struct {
		OauthClient struct {
			Name, ClientId, Type, Etag string
			AccessTokenLifetime        string
		}
		ClientSecret string
	}
	require.NoError(t, json.Unmarshal(body, &created))
	require.Equal(t, "TYPE_PUBLIC", created.OauthClient.Type)
	require.Equal(t, "600s", created.OauthClient.AccessTokenLifetime)
	require.Empty(t, created.ClientSecret)
	name := created.OauthClient.Name

	cases := []struct {
		name, method, host, path, body, auth string
		want                                 int
	}{
		{"the admin reads it", http.MethodGet, "alpha.localhost", "/v1/" + name, "", admin, http.StatusOK},
		{"the admin lists", http.MethodGet, "alpha.localhost", "/v1/oauthClients?pageSize=1", "", admin, http.StatusOK},
		{"anyone else is asked who they are", http.MethodGet, "alpha.localhost", "/v1/oauthClients", "", "", http.StatusUnauthorized},
		{"another tenant's host does not have it", http.MethodGet, "beta.localhost", "/v1/" + name, "", op, http.StatusNotFound},
		{"a camelCase mask renames it", http.MethodPatch, "alpha.localhost", "/v1/" + name + "?updateMask=displayName", `{"displayName":"Alpha CLI 2"}`, admin, http.StatusOK},
		{"a public client has no secret to rotate", http.MethodPost, "alpha.localhost", "/v1/" + name + ":rotateSecret", `{}`, admin, http.StatusBadRequest},
		{"a bad redirect URI is a bad request", http.MethodPatch, "alpha.localhost", "/v1/" + name + "?updateMask=redirectUris", `{"redirectUris":["http://example.com/cb"]}`, admin, http.StatusBadRequest},
		{"the operator deletes it", http.MethodDelete, "alpha.localhost", "/v1/" + name, "", op, http.StatusOK},
		{"then it is gone", http.MethodGet, "alpha.localhost", "/v1/" + name, "", op, http.StatusNotFound},
	}
	for _, c := range cases {
		headers := asJSON
		if c.auth != "" {
			headers = append([]string{"Authorization", c.auth}, asJSON...)
		}
		code, body := s.rest(c.method, c.host, c.path, c.body, headers...)
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		if c.name == "a bad redirect URI is a bad request" {
			require.Contains(t, string(body), "REDIRECT_URI_INSECURE")
			require.Contains(t, string(body), "redirect_uris[0]")
		}
	}
}

// The README's OAuth client lines run as written (with the address of this
// test's identity in place of localhost:50052).
func TestReadmeOAuthClientTour(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	lines, err := readmetour.Lines("oauth-client-tour", func(l string) bool { return strings.HasPrefix(l, "grpcurl ") })
	require.NoError(t, err)
	require.Len(t, lines, 2)
	binDir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", binDir, "github.com/fullstorydev/grpcurl/cmd/grpcurl").CombinedOutput()
	require.NoError(t, err, "build grpcurl: %s", out)
	var outputs []string
	for _, line := range lines {
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(line, "localhost:50052", s.identity.Addr().String()))
		cmd.Env = append(registrytest.CleanEnv(), "PATH="+binDir+":"+os.Getenv("PATH"), "TENANTRY_OPERATOR_TOKEN="+registrytest.OperatorToken)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		outputs = append(outputs, string(out))
	}
	var created struct {
		OauthClient  struct{ ClientId string }
		ClientSecret string
	}
	require.NoError(t, json.Unmarshal([]byte(outputs[0]), &created), outputs[0])
	require.True(t, strings.HasPrefix(created.ClientSecret, "ocs_"), outputs[0])
	require.Contains(t, outputs[1], created.OauthClient.ClientId)
	require.NotContains(t, outputs[1], created.ClientSecret)
	require.NoError(t, s.identity.VerifyClientSecret(context.Background(), "demo", created.OauthClient.ClientId, created.ClientSecret))
}
