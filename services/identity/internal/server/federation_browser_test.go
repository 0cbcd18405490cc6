package server_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// oidcProviderOPDir is an OpenID Provider written with the npm package
// oidc-provider (see its server.js).
const oidcProviderOPDir = "testdata/oidc-provider-op"

// TestSignInWithOIDCProviderInABrowser adds an OpenID Provider we did not
// write (npm oidc-provider, with its own login and consent pages) to a
// tenant, and signs people in through it in headless Chromium with real
// redirects: a new person signs up, an existing account is linked only with
// its password, and an address the provider does not vouch for gets in
// nowhere.
func TestSignInWithOIDCProviderInABrowser(t *testing.T) {
	t.Parallel()
	requireNodeApp(t, oidcProviderOPDir)
	_, err := os.Stat(chromiumPath)
	require.NoError(t, err, "Chromium is required (deploy/scripts/ensure-chromium.sh, or `make test`, installs it)")

	s := startSystem(t, "alpha")
	alpha := s.issuer("alpha")
	admin := s.makeAdmin("alpha", "admin@alpha.example").GetAccessToken()
	s.signUpAndLogin("alpha", "lena@alpha.example")
	s.signUpAndLogin("alpha", "mia@alpha.example")

	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	accounts, err := json.Marshal(map[string]any{
		"olga": map[string]any{"email": "olga@op.example", "email_verified": true, "name": "Olga Upstream"},
		"lena": map[string]any{"email": "lena@alpha.example", "email_verified": true},
		// Someone at the provider typed mia's address, unverified.
		"not-mia": map[string]any{"email": "mia@alpha.example", "email_verified": false},
	})
	require.NoError(t, err)
	const clientID, secret = "tenantry-alpha", "a client secret shared with the provider"
	startNodeApp(t, oidcProviderOPDir, ln, "OP_LISTEN_FD=3", "OP_ISSUER="+issuer, "OP_CLIENT_ID="+clientID,
		"OP_CLIENT_SECRET="+secret, "OP_REDIRECT_URI="+alpha+"/login/idp/corp/callback", "OP_ACCOUNTS="+string(accounts))

	_, err = identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(in("alpha", admin),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "corp", DisplayName: "Corp Login", Kind: identityv1.IdentityProvider_KIND_OIDC,
			Issuer: issuer, ClientId: clientID, ClientSecret: secret, AllowSignup: true,
		}})
	require.NoError(t, err)

	// signIn clicks "Log in with Corp Login" on alpha's login page and signs
	// in at the provider as login (its own pages: login, then consent).
	signIn := func(t *testing.T, b *browser, login string) {
		t.Helper()
		b.run(t, "open the login page", chromedp.Navigate(alpha+"/login"))
		b.waitFor(t, "the provider's button", visible(`a[href="/login/idp/corp"]`))
		b.run(t, "click the provider's button", chromedp.Click(chromedp.CSS(`a[href="/login/idp/corp"]`)))
		b.waitFor(t, "the provider's login page", fmt.Sprintf(`location.origin === %q && !!document.querySelector('input[name="login"]')`, issuer))
		b.run(t, "sign in at the provider",
			chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), login),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "anything"),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		b.waitFor(t, "the provider's consent page", fmt.Sprintf(`location.origin === %q && !!document.querySelector('input[name="prompt"][value="consent"]')`, issuer))
		b.run(t, "consent", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	}

	t.Run("a new person signs up through the provider and sees it on the account page", func(t *testing.T) {
		b := startBrowser(t)
		signIn(t, b, "olga")
		b.waitFor(t, "alpha's account page, logged in", fmt.Sprintf(`location.href === %q && %s`, alpha+"/account", contains("#me-email", "olga@op.example")))
		b.waitFor(t, "the connected provider", contains("#identities", "Corp Login (olga@op.example)"))
		// It is olga's only way to log in: disconnecting is refused.
		b.waitFor(t, "the account page loaded", `document.body.dataset.loaded === 'true'`)
		b.run(t, "disconnect", chromedp.Click(chromedp.CSS(`#identities button`)))
		b.waitFor(t, "the refusal", contains("#message", "only way to log in"))
	})

	t.Run("an existing account is connected after its password", func(t *testing.T) {
		b := startBrowser(t)
		signIn(t, b, "lena")
		b.waitFor(t, "the link page", fmt.Sprintf(`location.href === %q && %s`, alpha+"/login/link", contains("main", "lena@alpha.example")))
		b.run(t, "give lena's password",
			chromedp.SendKeys(chromedp.CSS(`#password`), goodPassword),
			chromedp.Click(chromedp.CSS(`#link-form button[type="submit"]`)))
		b.waitFor(t, "alpha's account page, logged in as lena", contains("#me-email", "lena@alpha.example"))
		b.waitFor(t, "the connected provider", contains("#identities", "Corp Login (lena@alpha.example)"))
		// lena has a password: she may disconnect the provider. (Once the
		// page's sections have all loaded: those above the providers' would
		// move the button from under the click.)
		b.waitFor(t, "the account page loaded", `document.body.dataset.loaded === 'true'`)
		b.run(t, "disconnect", chromedp.Click(chromedp.CSS(`#identities button`)))
		b.waitFor(t, "the provider disconnected", contains("#message", "Corp Login is disconnected"))
		b.waitFor(t, "the Connect button back", contains("#connect", "Connect Corp Login"))
	})

	t.Run("an address the provider does not vouch for gets in nowhere", func(t *testing.T) {
		b := startBrowser(t)
		signIn(t, b, "not-mia")
		b.waitFor(t, "alpha's login page with the refusal", fmt.Sprintf(`location.pathname === '/login' && location.origin === %q && %s`,
			alpha, contains("#message", "not connected to an account here")))
		b.run(t, "open the account page", chromedp.Navigate(alpha+"/account"))
		b.waitFor(t, "nobody logged in", visible("#logged-out"))
	})
}
