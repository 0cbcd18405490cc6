package account

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
)

func TestRedirectURIRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		uri    string
		typ    ClientType
		reason string // "" when the URI is accepted
	}{
		{"an https URI is accepted", "https://app.example.com/callback", ClientConfidential, ""},
		{"an https URI with a query and a port is accepted", "https://app.example.com:8443/cb?tenant=acme", ClientConfidential, ""},
		{"http on localhost is accepted", "http://localhost:3000/cb", ClientConfidential, ""},
		{"http on a name under localhost is accepted", "http://acme.localhost:8080/cb", ClientConfidential, ""},
		{"http on localhost in capitals is accepted", "http://LocalHost/cb", ClientPublic, ""},
		{"http on 127.0.0.1 is accepted", "http://127.0.0.1:51004/cb", ClientPublic, ""},
		{"http on [::1] is accepted", "http://[::1]:8080/cb", ClientPublic, ""},
		{"a native app's reverse-domain scheme is accepted", "com.example.app:/oauth2redirect", ClientPublic, ""},
		{"a reverse-domain scheme with a host part is accepted", "com.example.app://callback", ClientPublic, ""},

		{"an empty URI is refused", "", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a relative URI is refused", "/callback", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a URI without a scheme is refused", "app.example.com/callback", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a fragment is refused", "https://app.example.com/cb#state", ClientConfidential, "REDIRECT_URI_FRAGMENT"},
		{"an empty fragment is refused", "https://app.example.com/cb#", ClientPublic, "REDIRECT_URI_FRAGMENT"},
		{"http on a public host is refused", "http://app.example.com/cb", ClientConfidential, "REDIRECT_URI_INSECURE"},
		{"http on a host that only starts with localhost is refused", "http://localhost.evil.example/cb", ClientPublic, "REDIRECT_URI_INSECURE"},
		{"http on another loopback address is refused", "http://127.0.0.2/cb", ClientPublic, "REDIRECT_URI_INSECURE"},
		{"http on a private address is refused", "http://10.0.0.1/cb", ClientConfidential, "REDIRECT_URI_INSECURE"},
		{"a wildcard host is refused", "https://*.example.com/cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a user and password are refused", "https://user:pass@app.example.com/cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a backslash is refused", `https://app.example.com\@evil.example/cb`, ClientConfidential, "REDIRECT_URI_INVALID"},
		{"https without a host is refused", "https:///cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"https without slashes is refused", "https:app.example.com/cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a port out of range is refused", "https://app.example.com:99999/cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a space is refused", "https://app.example.com/my cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a non-ASCII host is refused", "https://exämple.com/cb", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a control character is refused", "https://app.example.com/cb\r\nX: y", ClientConfidential, "REDIRECT_URI_INVALID"},
		{"an overlong URI is refused", "https://app.example.com/" + strings.Repeat("a", maxRedirectURILength), ClientConfidential, "REDIRECT_URI_INVALID"},
		{"a private-use scheme is refused for a confidential client", "com.example.app:/cb", ClientConfidential, "REDIRECT_URI_CUSTOM_SCHEME"},
		{"a scheme that is not a reverse domain is refused", "myapp:/cb", ClientPublic, "REDIRECT_URI_CUSTOM_SCHEME"},
		{"javascript is refused", "javascript:alert(1)", ClientPublic, "REDIRECT_URI_CUSTOM_SCHEME"},
		{"data is refused", "data:text/html,hello", ClientPublic, "REDIRECT_URI_CUSTOM_SCHEME"},
		{"file is refused", "file:///etc/passwd", ClientPublic, "REDIRECT_URI_CUSTOM_SCHEME"},
		{"a private-use scheme without a path is refused", "com.example.app:callback", ClientPublic, "REDIRECT_URI_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkRedirectURI("oauth_client.redirect_uris[0]", c.uri, c.typ)
			if c.reason == "" {
				require.NoError(t, err)
				return
			}
			f, ok := fault.As(err)
			require.True(t, ok, "%q: %v", c.uri, err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Equal(t, c.reason, f.Reason, f.Message)
			require.Len(t, f.Violations, 1)
			require.Equal(t, "oauth_client.redirect_uris[0]", f.Violations[0].Field)
		})
	}
}

// webApp is a valid confidential client whose users sign in.
func webApp() *OAuthClient {
	return &OAuthClient{
		DisplayName:  "Acme Web",
		Type:         ClientConfidential,
		RedirectURIs: []string{"https://app.acme.example/callback"},
		GrantTypes:   []GrantType{GrantAuthorizationCode, GrantRefreshToken},
		Scopes:       []string{"openid", "profile", "email", "offline_access"},
	}
}

func TestOAuthClientRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(c *OAuthClient)
		reason string   // the answer's reason: the first violation's
		fields []string // every violation, in order; none when accepted
	}{
		{name: "a confidential web app is accepted", change: func(*OAuthClient) {}},
		{name: "a public single-page app is accepted", change: func(c *OAuthClient) {
			c.Type, c.RedirectURIs = ClientPublic, []string{"https://spa.acme.example/", "http://localhost:5173/"}
			c.PostLogoutRedirectURIs = []string{"https://spa.acme.example/bye"}
		}},
		{name: "a native app with a private-use scheme is accepted", change: func(c *OAuthClient) {
			c.Type, c.RedirectURIs = ClientPublic, []string{"com.acme.notes:/oauth2redirect", "http://127.0.0.1/callback"}
		}},
		{name: "a service with client_credentials and its own scopes is accepted", change: func(c *OAuthClient) {
			c.RedirectURIs, c.GrantTypes, c.Scopes = nil, []GrantType{GrantClientCredentials}, []string{"notes:read", "billing.write"}
		}},
		{name: "a lifetime of an hour and EdDSA are accepted", change: func(c *OAuthClient) {
			c.AccessTokenLifetime, c.IDTokenAlg = time.Hour, SigningEdDSA
		}},

		{name: "an empty client names every required field", change: func(c *OAuthClient) { *c = OAuthClient{} },
			reason: "DISPLAY_NAME_REQUIRED", fields: []string{"oauth_client.display_name", "oauth_client.type", "oauth_client.grant_types"}},
		{name: "a display name on two lines is refused", change: func(c *OAuthClient) { c.DisplayName = "Acme\nAdmin" },
			reason: "DISPLAY_NAME_INVALID", fields: []string{"oauth_client.display_name"}},
		{name: "a public client may not use client_credentials", change: func(c *OAuthClient) {
			c.Type, c.GrantTypes = ClientPublic, []GrantType{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken}
		}, reason: "GRANT_TYPE_NOT_ALLOWED", fields: []string{"oauth_client.grant_types[1]"}},
		{name: "an unknown grant type is refused", change: func(c *OAuthClient) {
			c.GrantTypes = []GrantType{GrantAuthorizationCode, GrantRefreshToken, "password"}
		},
			reason: "GRANT_TYPE_INVALID", fields: []string{"oauth_client.grant_types[2]"}},
		{name: "refresh_token needs authorization_code", change: func(c *OAuthClient) {
			c.RedirectURIs, c.GrantTypes, c.Scopes = nil, []GrantType{GrantClientCredentials, GrantRefreshToken}, nil
		}, reason: "GRANT_TYPE_NEEDS_AUTHORIZATION_CODE", fields: []string{"oauth_client.grant_types"}},
		{name: "authorization_code needs a redirect URI", change: func(c *OAuthClient) { c.RedirectURIs = nil },
			reason: "REDIRECT_URI_REQUIRED", fields: []string{"oauth_client.redirect_uris"}},
		{name: "a service has no use for redirect URIs", change: func(c *OAuthClient) {
			c.GrantTypes, c.Scopes = []GrantType{GrantClientCredentials}, nil
			c.PostLogoutRedirectURIs = []string{"https://app.acme.example/bye"}
		}, reason: "REDIRECT_URI_UNUSED", fields: []string{"oauth_client.redirect_uris", "oauth_client.post_logout_redirect_uris"}},
		{name: "offline_access needs the refresh_token grant", change: func(c *OAuthClient) { c.GrantTypes = []GrantType{GrantAuthorizationCode} },
			reason: "SCOPE_NEEDS_REFRESH_TOKEN", fields: []string{"oauth_client.allowed_scopes[3]"}},
		{name: "a service cannot have the scopes of a user", change: func(c *OAuthClient) {
			c.RedirectURIs, c.GrantTypes, c.Scopes = nil, []GrantType{GrantClientCredentials}, []string{"notes:read", "openid"}
		}, reason: "SCOPE_NEEDS_USER", fields: []string{"oauth_client.allowed_scopes[1]"}},
		{name: "scopes out of the pattern and OpenID scopes without claims are refused", change: func(c *OAuthClient) {
			c.Scopes = []string{"openid", "Notes Read", "phone", "1st", "ok.scope"}
		}, reason: "SCOPE_INVALID", fields: []string{"oauth_client.allowed_scopes[1]", "oauth_client.allowed_scopes[2]", "oauth_client.allowed_scopes[3]"}},
		{name: "too many scopes are refused", change: func(c *OAuthClient) {
			c.Scopes = nil
			for i := range maxClientScopes + 1 {
				c.Scopes = append(c.Scopes, "s"+strings.Repeat("x", i))
			}
		}, reason: "SCOPES_TOO_MANY", fields: []string{"oauth_client.allowed_scopes"}},
		{name: "too many redirect URIs are refused", change: func(c *OAuthClient) {
			c.RedirectURIs = nil
			for i := range maxRedirectURIs + 1 {
				c.RedirectURIs = append(c.RedirectURIs, "https://app.acme.example/cb"+strings.Repeat("x", i))
			}
		}, reason: "REDIRECT_URIS_TOO_MANY", fields: []string{"oauth_client.redirect_uris"}},
		{name: "an access token lifetime under a minute is refused", change: func(c *OAuthClient) { c.AccessTokenLifetime = 30 * time.Second },
			reason: "ACCESS_TOKEN_LIFETIME_INVALID", fields: []string{"oauth_client.access_token_lifetime"}},
		{name: "an access token lifetime over a day is refused", change: func(c *OAuthClient) { c.AccessTokenLifetime = 25 * time.Hour },
			reason: "ACCESS_TOKEN_LIFETIME_INVALID", fields: []string{"oauth_client.access_token_lifetime"}},
		{name: "an access token lifetime in fractions of a second is refused", change: func(c *OAuthClient) { c.AccessTokenLifetime = 90*time.Second + time.Millisecond },
			reason: "ACCESS_TOKEN_LIFETIME_INVALID", fields: []string{"oauth_client.access_token_lifetime"}},
		{name: "an unknown ID token algorithm is refused", change: func(c *OAuthClient) { c.IDTokenAlg = "HS256" },
			reason: "SIGNING_ALGORITHM_INVALID", fields: []string{"oauth_client.id_token_signed_response_alg"}},
		{name: "every bad redirect URI is named at once, by its index in the request", change: func(c *OAuthClient) {
			c.RedirectURIs = []string{
				"https://app.acme.example/callback",
				"http://app.acme.example/callback",
				"https://app.acme.example/callback", // a repeat: dropped, not refused
				"https://app.acme.example/cb#top",
				"com.acme.app:/cb",
				"/relative",
			}
			c.PostLogoutRedirectURIs = []string{"javascript:alert(1)"}
		}, reason: "REDIRECT_URI_INSECURE", fields: []string{
			"oauth_client.redirect_uris[1]", "oauth_client.redirect_uris[3]", "oauth_client.redirect_uris[4]",
			"oauth_client.redirect_uris[5]", "oauth_client.post_logout_redirect_uris[0]",
		}},
		{name: "a client bad in every way names every field", change: func(c *OAuthClient) {
			c.DisplayName, c.Type = "\u200b", ClientPublic
			c.RedirectURIs = []string{"http://app.acme.example/cb"}
			c.GrantTypes = []GrantType{GrantRefreshToken, GrantClientCredentials}
			c.Scopes = []string{"BAD"}
			c.AccessTokenLifetime, c.IDTokenAlg = time.Second, "none"
		}, reason: "DISPLAY_NAME_INVALID", fields: []string{
			"oauth_client.display_name", "oauth_client.redirect_uris[0]", "oauth_client.grant_types[1]",
			"oauth_client.grant_types", "oauth_client.redirect_uris", "oauth_client.allowed_scopes[0]",
			"oauth_client.access_token_lifetime", "oauth_client.id_token_signed_response_alg",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client := webApp()
			c.change(client)
			err := checkOAuthClient(client)
			if c.fields == nil {
				require.NoError(t, err)
				return
			}
			f, ok := fault.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Equal(t, c.reason, f.Reason, f.Message)
			var fields []string
			for _, v := range f.Violations {
				require.NotEmpty(t, v.Description, v.Field)
				fields = append(fields, v.Field)
			}
			require.Equal(t, c.fields, fields, f.Message)
		})
	}
}

func TestOAuthClientsAreStoredInOneForm(t *testing.T) {
	t.Parallel()
	c := webApp()
	c.RedirectURIs = []string{"https://b.acme.example/cb", "https://a.acme.example/cb", "https://b.acme.example/cb"}
	c.GrantTypes = []GrantType{GrantRefreshToken, GrantAuthorizationCode, GrantRefreshToken}
	c.Scopes = []string{"profile", "openid", "profile"}
	require.NoError(t, checkOAuthClient(c))
	require.Equal(t, []string{"https://b.acme.example/cb", "https://a.acme.example/cb"}, c.RedirectURIs, "order kept, repeats dropped")
	require.Equal(t, []GrantType{GrantRefreshToken, GrantAuthorizationCode}, c.GrantTypes)
	require.Equal(t, []string{"openid", "profile"}, c.Scopes, "sorted, repeats dropped")
	require.Equal(t, SigningRS256, c.IDTokenAlg, "RS256 unless chosen")
}

func TestClientIDsAndSecrets(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := newOAuthClientID()
		require.Regexp(t, `^oc_[0-9a-f]{32}$`, id)
		require.False(t, seen[id], "a client id came twice")
		seen[id] = true
		secret, hash := newClientSecret()
		require.True(t, strings.HasPrefix(secret, "ocs_"))
		require.GreaterOrEqual(t, len(secret)-len("ocs_"), 43, "fewer than 256 bits of base64url")
		require.Equal(t, hashSecret(secret), hash)
		require.NotContains(t, string(hash), secret)
	}
}
