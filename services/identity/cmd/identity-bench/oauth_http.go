package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// Paths of a tenant's OpenID Provider, on its host.
const (
	discoveryPath = "/.well-known/openid-configuration"
	authorizePath = "/oauth/authorize"
	tokenPath     = "/oauth/token"
	keysPath      = "/oauth/keys"
	healthzPath   = "/healthz"
	// authConfigPath is GetAuthConfig over REST.
	authConfigPath = "/v1/auth/config"
	pageLoginPath  = "/login"
)

// callbackURI is the bench apps' redirect URI. Nothing listens there: a
// browser stops at it (it is not a tenant host) and the code is read from
// the redirect.
const callbackURI = "http://localhost:3000/callback"

// oauthApp is an OAuth client registered in a tenant, as an app holds it.
type oauthApp struct {
	id, secret string
}

// registerOAuthClient registers c in tenant through OAuthClientService
// with the operator's token, as an operator's tooling would.
func (b *bench) registerOAuthClient(ctx context.Context, tenant string, c *identityv1.OAuthClient) (oauthApp, error) {
	ctx, cancel := context.WithTimeout(withUser(ctx, tenant, b.sec.operator), callTimeout)
	defer cancel()
	resp, err := identityv1.NewOAuthClientServiceClient(b.shared.pick(0).conn).CreateOAuthClient(ctx,
		&identityv1.CreateOAuthClientRequest{OauthClient: c})
	if err != nil {
		return oauthApp{}, fmt.Errorf("register OAuth client %q: %w", c.GetDisplayName(), err)
	}
	app := oauthApp{id: resp.GetOauthClient().GetClientId(), secret: resp.GetClientSecret()}
	if app.id == "" || app.secret == "" {
		return oauthApp{}, fmt.Errorf("register OAuth client %q: the answer lacks the client id or secret", c.GetDisplayName())
	}
	return app, nil
}

// tenantHTTP reaches one tenant's host on identity's HTTP port, as an app
// or a browser on the machine does: browsers resolve *.localhost to
// loopback, Go does not, so every connection is dialled to identity's
// address while URLs and Host headers name the tenant.
type tenantHTTP struct {
	issuer string // http://{tenant}.localhost:{port}, the tenant's issuer
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newTenantHTTP(identityHTTPAddr, tenant string) (*tenantHTTP, error) {
	_, port, err := net.SplitHostPort(identityHTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("identity's HTTP address %q: %w", identityHTTPAddr, err)
	}
	d := &net.Dialer{Timeout: callTimeout, KeepAlive: 30 * time.Second}
	return &tenantHTTP{
		issuer: "http://" + net.JoinHostPort(tenant+".localhost", port),
		dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, identityHTTPAddr)
		},
	}, nil
}

// client returns a keep-alive HTTP/1.1 client keeping up to idle
// connections open, so that callers calling back to back reuse them.
func (th *tenantHTTP) client(idle int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         th.dial,
			MaxIdleConns:        idle,
			MaxIdleConnsPerHost: idle,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: callTimeout,
		// An answer is judged as it is: nothing here expects a redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get fetches path and checks that it answers 200 with a body, reading
// the body to its end so that the connection is reused.
func (th *tenantHTTP) get(ctx context.Context, c *http.Client, path string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, th.issuer+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: read the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return n, fmt.Errorf("GET %s: %s with %d bytes", path, resp.Status, n)
	}
	return n, nil
}

// getJSON fetches path and decodes its JSON answer into out.
func (th *tenantHTTP) getJSON(ctx context.Context, c *http.Client, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, th.issuer+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode the answer: %w", path, err)
	}
	return nil
}

// tokenResponse is the part of a token endpoint answer that is checked.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

// token posts form to the token endpoint as app (client_secret_basic, the
// id and secret form-encoded as RFC 6749 says) and decodes the answer.
func (th *tenantHTTP) token(ctx context.Context, c *http.Client, app oauthApp, form url.Values) (tokenResponse, error) {
	var out tokenResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, th.issuer+tokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(app.id), url.QueryEscape(app.secret))
	resp, err := c.Do(req)
	if err != nil {
		return out, fmt.Errorf("POST %s (%s): %w", tokenPath, form.Get("grant_type"), err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("POST %s (%s): %s: %s", tokenPath, form.Get("grant_type"), resp.Status, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("POST %s (%s): decode the answer: %w", tokenPath, form.Get("grant_type"), err)
	}
	if out.AccessToken == "" || !strings.EqualFold(out.TokenType, "Bearer") {
		return out, fmt.Errorf("POST %s (%s): no bearer access token in the answer", tokenPath, form.Get("grant_type"))
	}
	return out, nil
}

// pkce is one authorization's PKCE pair (RFC 7636, S256).
type pkce struct {
	verifier, challenge string
}

// newPKCE draws a verifier of 52 unreserved characters (260 random bits;
// RFC 7636 asks for 43 to 128) and its S256 challenge.
func newPKCE() pkce {
	v := rand.Text() + rand.Text()
	return pkce{verifier: v, challenge: s256(v)}
}

// s256 is the S256 code challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// preparedCode is an authorization code waiting to be exchanged, with the
// verifier of the challenge its authorization sent.
type preparedCode struct {
	app      oauthApp
	code     string
	verifier string
}

// exchangeForm is the token request that exchanges pc.
func (pc preparedCode) exchangeForm() url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {pc.code},
		"redirect_uri": {callbackURI}, "code_verifier": {pc.verifier},
	}
}

// browser is a cookie-keeping client on one tenant's host: it follows
// redirects within tenant hosts and stops at any other (the app's
// redirect URI), returning that response.
type browser struct {
	th     *tenantHTTP
	client *http.Client
	user   account // who logs in, when the browser has no session
}

func (th *tenantHTTP) newBrowser(user account) (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := th.client(4)
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		if !strings.HasSuffix(req.URL.Hostname(), ".localhost") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &browser{th: th, client: c, user: user}, nil
}

// authorize takes the browser through /oauth/authorize for app, logging in
// on the tenant's login page as its user (with password) if it has no
// session yet, and returns the code the app's redirect URI receives. With a
// session the authorization is silent: /oauth/authorize, then
// /oauth/login, then the redirect with the code.
func (br *browser) authorize(ctx context.Context, app oauthApp, password string) (preparedCode, error) {
	a := br.user
	p, state, nonce := newPKCE(), rand.Text(), rand.Text()
	q := url.Values{
		"response_type": {"code"}, "client_id": {app.id}, "redirect_uri": {callbackURI},
		"scope": {"openid offline_access"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, br.th.issuer+authorizePath+"?"+q.Encode(), nil)
	if err != nil {
		return preparedCode{}, err
	}
	resp, err := br.do(req)
	if err != nil {
		return preparedCode{}, err
	}
	if resp.Request.URL.Path == pageLoginPath {
		// No session yet: the login page, with where to go back to.
		form := url.Values{"email": {a.email}, "password": {password}, "next": {resp.Request.URL.Query().Get("next")}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, br.th.issuer+pageLoginPath, strings.NewReader(form.Encode()))
		if err != nil {
			return preparedCode{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if resp, err = br.do(req); err != nil {
			return preparedCode{}, err
		}
	}
	code, err := codeFrom(resp, state)
	if err != nil {
		return preparedCode{}, fmt.Errorf("authorize %s in %s: %w", a.email, a.tenant, err)
	}
	return preparedCode{app: app, code: code, verifier: p.verifier}, nil
}

// do sends req, following redirects within tenant hosts, and reads the
// last answer's body to its end.
func (br *browser) do(req *http.Request) (*http.Response, error) {
	resp, err := br.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp, nil
}

// codeFrom reads the code from a redirect to the app's redirect URI.
func codeFrom(resp *http.Response, state string) (string, error) {
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("ended at %s with %s, not a redirect to the app", resp.Request.URL.Path, resp.Status)
	}
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("redirect: %w", err)
	}
	if got := to.Scheme + "://" + to.Host + to.Path; got != callbackURI {
		return "", fmt.Errorf("redirected to %s, not to the app's %s", got, callbackURI)
	}
	q := to.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("the app got error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		return "", errors.New("the app got another state")
	}
	if q.Get("code") == "" {
		return "", errors.New("the app got no code")
	}
	return q.Get("code"), nil
}
