package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// openIDClientRPDir is a relying party written with the npm package
// openid-client, as a Node.js web app would be (see its server.js).
const openIDClientRPDir = "testdata/openid-client-rp"

// openIDClientRP is that relying party, running for one test.
type openIDClientRP struct {
	// origin is where the browser reaches it: http://localhost:PORT.
	origin string
	output *lockedBuffer
}

// lockedBuffer collects a process's output from its pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireNodeApp fails t (it does not skip: `make test` has what it
// needs) unless Node.js is installed, and installs the app in dir's
// dependencies from its package-lock.json, as services/notes-node's tests
// do for that service.
func requireNodeApp(t *testing.T, dir string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s is required: %s is a Node.js app (Node.js >= 20.19, with npm)", tool, dir)
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NPM_CONFIG_UPDATE_NOTIFIER=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci in %s:\n%s", dir, out)
}

func requireOpenIDClientRP(t *testing.T) { requireNodeApp(t, openIDClientRPDir) }

// startNodeApp starts `node server.js` in dir on ln, passed as file
// descriptor 3 (so its port is known before it starts), with env added to
// the environment, and waits until it prints {"msg":"listening","url":...}:
// it returns that URL. It is killed when t ends; its output is logged if t
// failed.
func startNodeApp(t *testing.T, dir string, ln *net.TCPListener, env ...string) (string, *lockedBuffer) {
	t.Helper()
	socket, err := ln.File()
	require.NoError(t, err)
	cmd := exec.Command("node", "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{socket}
	output := &lockedBuffer{}
	cmd.Stderr = output
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start %s", dir)
	// The child has its own copy of the socket.
	require.NoError(t, socket.Close())
	require.NoError(t, ln.Close())
	exited := make(chan struct{})
	listening := make(chan string, 1)
	go func() {
		defer close(exited)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			fmt.Fprintln(output, lines.Text())
			var line struct{ Msg, URL string }
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Msg == "listening" {
				listening <- line.URL
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("output of %s:\n%s", dir, output.String())
		}
	})
	select {
	case origin := <-listening:
		return origin, output
	case <-exited:
		require.FailNow(t, dir+" exited before it listened", "%s", output.String())
	case <-time.After(browserStep):
		require.FailNow(t, dir+" did not listen", "after %s:\n%s", browserStep, output.String())
	}
	return "", nil
}

// startOpenIDClientRP starts the relying party on ln (so its port, and
// with it the redirect URIs registered for the client, is known before it
// starts) as the client clientID of issuer, and waits until it has done
// discovery and listens.
func startOpenIDClientRP(t *testing.T, ln *net.TCPListener, issuer, clientID, secret string) *openIDClientRP {
	t.Helper()
	origin, output := startNodeApp(t, openIDClientRPDir, ln,
		"RP_ISSUER="+issuer, "RP_CLIENT_ID="+clientID, "RP_CLIENT_SECRET="+secret, "RP_LISTEN_FD=3")
	return &openIDClientRP{origin: origin, output: output}
}

// call has the page, which must be on the relying party's origin, POST to
// one of its endpoints and returns the JSON answer.
func (rp *openIDClientRP) call(t *testing.T, b *browser, path string) map[string]any {
	t.Helper()
	return eval[map[string]any](t, b, fmt.Sprintf(`fetch(%q, {method: 'POST'}).then(r => r.json())`, path))
}

// open navigates the browser to one of the relying party's pages, which
// may go to the provider and back through redirects, waits for it to end
// on the relying party's page at path and returns what that page shows.
func (rp *openIDClientRP) open(t *testing.T, b *browser, from, path string) map[string]any {
	t.Helper()
	b.run(t, "open "+from, chromedp.Navigate(rp.origin+from))
	return rp.shown(t, b, path)
}

// shown waits for the browser to be on the relying party's page at path
// and returns the JSON the page shows.
func (rp *openIDClientRP) shown(t *testing.T, b *browser, path string) map[string]any {
	t.Helper()
	b.waitFor(t, "the relying party's "+path, fmt.Sprintf(
		`location.origin === %q && location.pathname === %q && !!document.querySelector('#result')`, rp.origin, path))
	return eval[map[string]any](t, b, `JSON.parse(document.querySelector('#result').textContent)`)
}

// navigations records the URLs of the documents a browser requests,
// redirects included: the trail of a redirect flow.
type navigations struct {
	mu   sync.Mutex
	urls []*url.URL
}

func (n *navigations) listen(t *testing.T, b *browser) {
	ctx, stop := context.WithCancel(b.ctx)
	t.Cleanup(stop)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok || e.Type != network.ResourceTypeDocument {
			return
		}
		if u, err := url.Parse(e.Request.URL); err == nil {
			n.mu.Lock()
			n.urls = append(n.urls, u)
			n.mu.Unlock()
		}
	}))
}

// since returns the documents requested after the first mark of them.
func (n *navigations) since(mark int) []*url.URL {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*url.URL(nil), n.urls[mark:]...)
}

func (n *navigations) mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.urls)
}

// requireTrail checks that trail passes through each of want (origin and
// path, "scheme://host/path") in that order, and returns the URL that
// matched each.
func requireTrail(t *testing.T, trail []*url.URL, want ...string) []*url.URL {
	t.Helper()
	var seen []string
	matched := make([]*url.URL, 0, len(want))
	i := 0
	for _, u := range trail {
		at := u.Scheme + "://" + u.Host + u.Path
		seen = append(seen, u.String())
		if i < len(want) && at == want[i] {
			matched = append(matched, u)
			i++
		}
	}
	require.Equal(t, len(want), i, "the browser went through %q, not in order through %q", seen, want)
	return matched
}

// audience is an ID token's aud claim as a list (a string or an array).
func audience(claims map[string]any) []string {
	switch aud := claims["aud"].(type) {
	case string:
		return []string{aud}
	case []any:
		var out []string
		for _, a := range aud {
			s, _ := a.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// TestOpenIDClientInABrowser has a relying party we did not write, the npm
// package openid-client in a Node.js web app, sign a user in through a
// tenant's OpenID Provider in headless Chromium, with real redirects from
// the app to the provider, its login page and back; then use the tokens
// it got: refresh, userinfo, introspection, revocation, and RP-initiated
// logout, after which the provider's session is gone.
func TestOpenIDClientInABrowser(t *testing.T) {
	t.Parallel()
	requireOpenIDClientRP(t)
	// Chromium missing fails the test here rather than skipping it.
	_, err := os.Stat(chromiumPath)
	require.NoError(t, err, "Chromium is required (deploy/scripts/ensure-chromium.sh, or `make test`, installs it)")

	s := startSystem(t, "alpha")
	issuer := s.issuer("alpha")
	admin := s.makeAdmin("alpha", "admin@alpha.example")
	const email = "ann@alpha.example"
	s.signUpAndLogin("alpha", email)

	// The app's port is the test's, so its URIs are registered exactly.
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	app := &identityv1.OAuthClient{
		DisplayName:            "Alpha Node App",
		Type:                   identityv1.OAuthClient_TYPE_CONFIDENTIAL,
		FirstParty:             true,
		RedirectUris:           []string{origin + "/callback"},
		PostLogoutRedirectUris: []string{origin + "/logged-out"},
		GrantTypes: []identityv1.OAuthClient_GrantType{
			identityv1.OAuthClient_GRANT_TYPE_AUTHORIZATION_CODE, identityv1.OAuthClient_GRANT_TYPE_REFRESH_TOKEN,
		},
		AllowedScopes:            []string{"openid", "profile", "email", "offline_access"},
		IdTokenSignedResponseAlg: identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA,
	}
	created, err := identityv1.NewOAuthClientServiceClient(s.conn).CreateOAuthClient(in("alpha", admin.GetAccessToken()),
		&identityv1.CreateOAuthClientRequest{OauthClient: app})
	require.NoError(t, err)
	clientID, secret := created.GetOauthClient().GetClientId(), created.GetClientSecret()

	rp := startOpenIDClientRP(t, ln, issuer, clientID, secret)
	require.Equal(t, origin, rp.origin, "the relying party listens where its URIs are registered")

	b := startBrowser(t)
	var trail navigations
	trail.listen(t, b)

	var signedIn map[string]any // the callback's answer
	var claims map[string]any   // its validated ID token's claims
	t.Run("the app's login goes to the tenant's login page and back to the app with a code, PKCE S256", func(t *testing.T) {
		mark := trail.mark()
		b.run(t, "open the app's login", chromedp.Navigate(rp.origin+"/login"))
		b.waitFor(t, "the tenant's login page", fmt.Sprintf(
			`location.origin === %q && location.pathname === '/login' && !!document.querySelector('#login-form')`, issuer))
		b.waitFor(t, "the login form", visible("#login-form"))
		b.run(t, "log in",
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), goodPassword+kb.Enter))
		signedIn = rp.shown(t, b, "/callback")
		require.Empty(t, signedIn["error"], "the app's callback: %v", signedIn)

		steps := requireTrail(t, trail.since(mark),
			rp.origin+"/login", issuer+"/oauth/authorize", issuer+"/login", issuer+"/oauth/login", rp.origin+"/callback")
		authorize, login, callback := steps[1].Query(), steps[2].Query(), steps[4].Query()
		require.Equal(t, clientID, authorize.Get("client_id"))
		require.Equal(t, rp.origin+"/callback", authorize.Get("redirect_uri"))
		require.Equal(t, "code", authorize.Get("response_type"))
		require.Equal(t, "S256", authorize.Get("code_challenge_method"))
		require.NotEmpty(t, authorize.Get("code_challenge"))
		require.NotEmpty(t, authorize.Get("nonce"))
		require.True(t, strings.HasPrefix(login.Get("next"), "/oauth/login?id="), "login page's next: %q", login.Get("next"))
		require.NotEmpty(t, callback.Get("code"))
		require.Equal(t, authorize.Get("state"), callback.Get("state"), "the state comes back")
		require.NotContains(t, callback, "error")

		claims, _ = signedIn["claims"].(map[string]any)
		require.NotNil(t, claims, "the ID token's claims: %v", signedIn)
		require.Equal(t, issuer, claims["iss"])
		require.Equal(t, []string{clientID}, audience(claims))
		require.Equal(t, authorize.Get("nonce"), claims["nonce"], "the nonce the app sent")
		require.Equal(t, authorize.Get("nonce"), signedIn["expected_nonce"], "and the app checked it against its own")
		require.Equal(t, "alpha", claims["tid"])
		require.NotEmpty(t, claims["sub"])
		require.NotEmpty(t, claims["sid"])
		require.NotEmpty(t, signedIn["access_token"])
		require.NotEmpty(t, signedIn["refresh_token"], "offline_access gives a refresh token")
		require.Contains(t, strings.Fields(fmt.Sprint(signedIn["scope"])), "offline_access")
	})
	require.NotNil(t, claims, "signed in")

	t.Run("refresh rotates the refresh token and gives new tokens for the same user", func(t *testing.T) {
		got := rp.call(t, b, "/refresh")
		require.Empty(t, got["error"], "refresh: %v", got)
		before, _ := got["before"].(map[string]any)
		after, _ := got["after"].(map[string]any)
		require.Equal(t, signedIn["refresh_token"], before["refresh_token"])
		require.NotEmpty(t, after["refresh_token"])
		require.NotEqual(t, before["refresh_token"], after["refresh_token"], "the refresh token rotates")
		require.NotEmpty(t, after["access_token"])
		require.NotEqual(t, before["access_token"], after["access_token"])
		refreshed, _ := after["claims"].(map[string]any)
		require.Equal(t, claims["sub"], refreshed["sub"])
		require.Equal(t, issuer, refreshed["iss"])
	})

	t.Run("userinfo answers for the ID token's subject with the new access token", func(t *testing.T) {
		got := rp.call(t, b, "/userinfo")
		require.Empty(t, got["error"], "userinfo: %v", got)
		require.Equal(t, claims["sub"], got["sub"])
		require.Equal(t, email, got["email"])
	})

	t.Run("introspection says the access token is active, for this client and user", func(t *testing.T) {
		got := rp.call(t, b, "/introspect?token=access_token")
		require.Empty(t, got["error"], "introspection: %v", got)
		require.Equal(t, true, got["active"], "%v", got)
		require.Equal(t, clientID, got["client_id"])
		require.Equal(t, claims["sub"], got["sub"])
		require.Equal(t, "alpha", got["tid"])
	})

	t.Run("revoking the refresh token ends the grant: its access token is inactive, no more refresh", func(t *testing.T) {
		got := rp.call(t, b, "/revoke?token=refresh_token")
		require.Equal(t, "refresh_token", got["revoked"], "revocation: %v", got)
		got = rp.call(t, b, "/introspect?token=access_token")
		require.Empty(t, got["error"], "introspection: %v", got)
		require.Equal(t, false, got["active"], "%v", got)
		got = rp.call(t, b, "/refresh")
		require.Equal(t, "invalid_grant", got["error"], "refresh after revocation: %v", got)
		got = rp.call(t, b, "/userinfo")
		require.NotEmpty(t, got["error"], "userinfo after revocation: %v", got)
	})

	var silent map[string]any
	t.Run("the browser's session at the provider signs the app in again without a login page", func(t *testing.T) {
		mark := trail.mark()
		silent = rp.open(t, b, "/login?prompt=none", "/callback")
		require.Empty(t, silent["error"], "silent sign-in: %v", silent)
		again, _ := silent["claims"].(map[string]any)
		require.Equal(t, claims["sub"], again["sub"])
		require.Equal(t, claims["sid"], again["sid"], "the same browser session")
		for _, u := range trail.since(mark) {
			require.False(t, u.Host == strings.TrimPrefix(issuer, "http://") && u.Path == "/login", "no login page: %s", u)
		}
	})

	t.Run("RP-initiated logout goes through the provider back to the app, and ends the session and its grants", func(t *testing.T) {
		mark := trail.mark()
		got := rp.open(t, b, "/logout", "/logged-out")
		require.Equal(t, true, got["logged_out"], "the app's post-logout page: %v", got)
		steps := requireTrail(t, trail.since(mark), rp.origin+"/logout", issuer+"/oauth/end_session", rp.origin+"/logged-out")
		endSession := steps[1].Query()
		require.Equal(t, silent["id_token"], endSession.Get("id_token_hint"))
		require.Equal(t, rp.origin+"/logged-out", endSession.Get("post_logout_redirect_uri"))
		require.Equal(t, endSession.Get("state"), steps[2].Query().Get("state"))

		// The app forgot its tokens; the provider must have ended the
		// grant they came from as well.
		require.Equal(t, false, introspect(t, s, clientID, secret, silent["access_token"].(string))["active"],
			"the access token of the session's grant")
	})

	t.Run("after logout, a silent sign-in is refused: login_required", func(t *testing.T) {
		got := rp.open(t, b, "/login?prompt=none", "/callback")
		require.Equal(t, "login_required", got["error"], "%v", got)
	})
}

// introspect asks the provider of tenant alpha about token, as the client
// id (RFC 7662, client_secret_basic).
func introspect(t *testing.T, s *system, id, secret, token string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.issuer("alpha")+"/oauth/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := s.localhostClient(nil).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}
