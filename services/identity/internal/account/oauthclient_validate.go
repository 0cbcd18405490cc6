package account

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"tenantry.dev/platform/fault"
)

// Limits of a client's lists and values: generous for real applications,
// small enough that one client's row stays small.
const (
	maxRedirectURIs        = 32
	maxRedirectURILength   = 2000
	maxClientScopes        = 50
	minAccessTokenLifetime = time.Minute
	maxAccessTokenLifetime = 24 * time.Hour
)

// oauthClientField is the request path of a client's fields in violations.
const oauthClientField = "oauth_client."

// scopePattern is what a scope of the tenant's own looks like: a token
// that needs no quoting anywhere (URLs, JSON, space-separated lists),
// like "notes:read" or "billing.write".
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)

// standardScopes are the OpenID Connect scopes identity answers. They
// concern a user, so a client that only gets tokens for itself
// (client_credentials) cannot be given them.
var standardScopes = []string{"openid", "profile", "email", "offline_access"}

// unsupportedScopes are OpenID Connect's other standard scopes, for which
// identity has no claims: a scope of the tenant's own by such a name would
// read as a promise of those claims.
var unsupportedScopes = []string{"address", "phone"}

// checkOAuthClient checks a client as it is to be stored, every field and
// every rule between fields, and returns one fault naming every violation
// (see fieldErrors). It also puts the lists in their stored form: grant
// types and redirect URIs without repeats, in the order given; scopes
// sorted without repeats; the default signing algorithm filled in.
func checkOAuthClient(c *OAuthClient) error {
	var bad fieldErrors
	field := func(name string) string { return oauthClientField + name }
	invalid := func(name, reason, format string, args ...any) {
		bad.add(fault.Invalid(field(name), reason, format, args...))
	}

	if strings.TrimSpace(c.DisplayName) == "" {
		invalid("display_name", "DISPLAY_NAME_REQUIRED", "%s is required: the name of the application, shown to the people who sign in to it", field("display_name"))
	} else {
		bad.add(ValidateDisplayName(field("display_name"), c.DisplayName))
	}

	if c.Type != ClientConfidential && c.Type != ClientPublic {
		invalid("type", "OAUTH_CLIENT_TYPE_INVALID",
			"%s is required: TYPE_CONFIDENTIAL for a server that keeps a secret, TYPE_PUBLIC for a browser or native app, which cannot", field("type"))
	}

	// Entries are checked where the request has them, so that a
	// violation's index names the entry sent; repeats go afterwards.
	for _, list := range []struct {
		name string
		uris *[]string
	}{{"redirect_uris", &c.RedirectURIs}, {"post_logout_redirect_uris", &c.PostLogoutRedirectURIs}} {
		if len(*list.uris) > maxRedirectURIs {
			invalid(list.name, "REDIRECT_URIS_TOO_MANY", "%s has %d URIs; at most %d are allowed", field(list.name), len(*list.uris), maxRedirectURIs)
		} else {
			for i, uri := range *list.uris {
				bad.add(checkRedirectURI(fmt.Sprintf("%s[%d]", field(list.name), i), uri, c.Type))
			}
		}
		*list.uris = uniqueInOrder(*list.uris)
	}

	if len(c.GrantTypes) == 0 {
		invalid("grant_types", "GRANT_TYPES_REQUIRED",
			"%s is required: authorization_code (users sign in), with refresh_token to renew their tokens, or client_credentials (a service's own tokens)", field("grant_types"))
	}
	for i, g := range c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken:
		case GrantClientCredentials:
			if c.Type == ClientPublic {
				invalid(fmt.Sprintf("grant_types[%d]", i), "GRANT_TYPE_NOT_ALLOWED",
					"%s[%d]: client_credentials is for confidential clients only, and a public client has no secret to authenticate with", field("grant_types"), i)
			}
		default:
			invalid(fmt.Sprintf("grant_types[%d]", i), "GRANT_TYPE_INVALID",
				"%s[%d] is not a grant type identity knows: use authorization_code, refresh_token or client_credentials", field("grant_types"), i)
		}
	}
	c.GrantTypes = uniqueInOrder(c.GrantTypes)
	code := c.HasGrant(GrantAuthorizationCode)
	if c.HasGrant(GrantRefreshToken) && !code {
		invalid("grant_types", "GRANT_TYPE_NEEDS_AUTHORIZATION_CODE",
			"refresh_token renews tokens that a user's sign-in gave: add authorization_code to %s, or remove refresh_token (client_credentials gets no refresh token)", field("grant_types"))
	}
	switch {
	case code && len(c.RedirectURIs) == 0:
		invalid("redirect_uris", "REDIRECT_URI_REQUIRED",
			"the authorization_code grant sends users back to a redirect URI: give at least one in %s", field("redirect_uris"))
	case !code && len(c.RedirectURIs) > 0:
		invalid("redirect_uris", "REDIRECT_URI_UNUSED",
			"only the authorization_code grant uses redirect URIs: add it to grant_types, or leave %s empty", field("redirect_uris"))
	}
	if !code && len(c.PostLogoutRedirectURIs) > 0 {
		invalid("post_logout_redirect_uris", "REDIRECT_URI_UNUSED",
			"only a client whose users sign in (the authorization_code grant) logs them out: add it to grant_types, or leave %s empty", field("post_logout_redirect_uris"))
	}

	if len(c.Scopes) > maxClientScopes {
		invalid("allowed_scopes", "SCOPES_TOO_MANY", "%s has %d scopes; at most %d are allowed", field("allowed_scopes"), len(c.Scopes), maxClientScopes)
	} else {
		noUser := len(c.GrantTypes) > 0 && !code
		for i, s := range c.Scopes {
			name := fmt.Sprintf("allowed_scopes[%d]", i)
			switch {
			case slices.Contains(unsupportedScopes, s):
				invalid(name, "SCOPE_UNSUPPORTED",
					"%s: %q is an OpenID Connect scope identity has no claims for; use openid, profile, email, offline_access or a scope of your own", field(name), s)
			case !scopePattern.MatchString(s):
				invalid(name, "SCOPE_INVALID",
					"%s: %q is not a scope: use 1-64 of a-z, 0-9, '_', '.', ':', '-', starting with a letter (like notes:read)", field(name), s)
			case slices.Contains(standardScopes, s) && noUser:
				invalid(name, "SCOPE_NEEDS_USER",
					"%s: %q concerns a signed-in user, and a client without the authorization_code grant has none: remove it, or add that grant", field(name), s)
			case s == "offline_access" && !c.HasGrant(GrantRefreshToken) && code:
				invalid(name, "SCOPE_NEEDS_REFRESH_TOKEN",
					"%s: offline_access asks for a refresh token: add refresh_token to grant_types, or remove the scope", field(name))
			}
		}
	}
	c.Scopes = slices.Compact(slices.Sorted(slices.Values(c.Scopes)))

	if d := c.AccessTokenLifetime; d != 0 && (d < minAccessTokenLifetime || d > maxAccessTokenLifetime || d%time.Second != 0) {
		invalid("access_token_lifetime", "ACCESS_TOKEN_LIFETIME_INVALID",
			"%s must be whole seconds from 1 minute to 24 hours, or unset for the default (15 minutes); %s is not", field("access_token_lifetime"), d)
	}

	switch c.IDTokenAlg {
	case "":
		c.IDTokenAlg = SigningRS256
	case SigningRS256, SigningEdDSA:
	default:
		invalid("id_token_signed_response_alg", "SIGNING_ALGORITHM_INVALID",
			"%s must be RS256 (the default, which every OpenID Connect library supports) or EdDSA", field("id_token_signed_response_alg"))
	}
	return bad.err()
}

// checkRedirectURI checks one redirect (or post-logout redirect) URI. It
// is compared with the URIs of authorization requests as a string, so it
// is checked as given and stored unchanged.
func checkRedirectURI(field, raw string, typ ClientType) error {
	invalid := func(reason, format string, args ...any) error {
		return fault.Invalid(field, reason, "%s: "+format, append([]any{field}, args...)...)
	}
	switch {
	case raw == "":
		return invalid("REDIRECT_URI_INVALID", "empty; give an absolute URI like https://app.example.com/callback")
	case len(raw) > maxRedirectURILength:
		return invalid("REDIRECT_URI_INVALID", "%d characters long; at most %d are allowed", len(raw), maxRedirectURILength)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return invalid("REDIRECT_URI_INVALID",
			"%q has a space, a control or a non-ASCII character; percent-encode it (and write an internationalised host in its xn-- form)", raw)
	case strings.Contains(raw, `\`):
		// Browsers read a backslash as a slash in http(s) URLs, so the
		// host a browser goes to may not be the host this code sees.
		return invalid("REDIRECT_URI_INVALID", "%q has a backslash; use '/' or percent-encode it (%%5C)", raw)
	case strings.Contains(raw, "#"):
		return invalid("REDIRECT_URI_FRAGMENT", "%q has a fragment (#...); a redirect URI must not (RFC 6749, section 3.1.2): remove it", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return invalid("REDIRECT_URI_INVALID", "%q is not an absolute URI; give one like https://app.example.com/callback", raw)
	}
	if u.User != nil {
		return invalid("REDIRECT_URI_INVALID", "%q has a user name or password before the host; remove it", raw)
	}
	if strings.Contains(u.Host, "*") {
		return invalid("REDIRECT_URI_INVALID", "%q has a wildcard; redirect URIs match exactly, so register each one", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("REDIRECT_URI_INVALID", "%q has port %s; a port is 1 to 65535", raw, p)
		}
	}
	switch u.Scheme {
	case "https", "http":
		if u.Opaque != "" || u.Hostname() == "" {
			return invalid("REDIRECT_URI_INVALID", "%q has no host; give one like https://app.example.com/callback", raw)
		}
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return invalid("REDIRECT_URI_INSECURE",
				"%q uses http, which is allowed only on localhost, *.localhost, 127.0.0.1 and [::1] (development, native apps' loopback); use https", raw)
		}
		return nil
	}
	if typ == ClientConfidential {
		return invalid("REDIRECT_URI_CUSTOM_SCHEME",
			"%q uses the scheme %q; private-use schemes are for native apps, which are public clients: a confidential client's redirect URIs use https", raw, u.Scheme)
	}
	if !strings.Contains(u.Scheme, ".") {
		// RFC 8252, section 7.1: a reverse domain name the app's
		// publisher controls. This also refuses javascript:, data:, file:
		// and every other scheme a browser itself acts on.
		return invalid("REDIRECT_URI_CUSTOM_SCHEME",
			"%q: a native app's private-use scheme must be a reverse domain name you control, like com.example.app:/callback (RFC 8252); %q is not one", raw, u.Scheme)
	}
	if u.Opaque != "" {
		return invalid("REDIRECT_URI_INVALID", "%q needs a path starting with '/', like %s:/callback", raw, u.Scheme)
	}
	return nil
}

// isLoopbackHost reports whether an http redirect URI's host is this
// machine's: localhost names (RFC 6761 keeps them on the machine) and the
// loopback literals native apps listen on (RFC 8252, section 7.3).
func isLoopbackHost(host string) bool {
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || host == "127.0.0.1" || host == "::1"
}

// uniqueInOrder returns s without repeats, keeping the first of each.
func uniqueInOrder[T comparable](s []T) []T {
	out := make([]T, 0, len(s))
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
