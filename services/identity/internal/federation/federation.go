// Package federation signs a tenant's users in with other identity
// providers ("Sign in with Google"): identity is an OAuth 2.0 / OpenID
// Connect client (relying party) of each provider a tenant's admins add.
//
// The protocol is the libraries': golang.org/x/oauth2 for the authorization
// code flow with PKCE, coreos/go-oidc for discovery and the ID token's
// checks (signature against the provider's published keys, issuer,
// audience, expiry); this package adds the nonce check, GitHub's API (no
// OpenID Connect there) and the browser flow around them. What a provider
// said then goes to account.Manager, whose rules decide which account it
// logs in to (see account/federation.go).
//
// # The browser flow
//
//   - GET /login/idp/{provider}?next=/path starts a login: identity makes a
//     state, a nonce and a PKCE verifier, keeps them in a sealed cookie
//     bound to the tenant (HttpOnly, SameSite=Lax so that the provider's
//     redirect back brings it, Path=/login/idp/, ten minutes), and sends
//     the browser to the provider.
//   - POST /login/idp/{provider}/connect (the account page's "Connect":
//     its script calls it with the user's access token) starts the same
//     flow to link the provider to the logged-in account.
//   - GET /login/idp/{provider}/callback is where the provider sends the
//     browser back: the state must match the cookie's (a callback that this
//     browser did not start is refused, so nobody can log a victim in to
//     an attacker's account or link an attacker's identity to a victim's
//     account), the code is exchanged with the verifier, the ID token
//     checked; then the browser is logged in, or sent to /login/link to
//     prove an existing account, or back to the login page with a reason.
//   - /login/link (a page) asks for the password of the account that has
//     the email the provider vouched for; the pending link waits in another
//     sealed cookie, never in the URL.
package federation

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/pages"
	"tenantry.dev/identity/internal/sealbox"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// Accounts is what the flow asks of identity's rules (account.Manager).
type Accounts interface {
	SignInProvider(ctx context.Context, t tenancy.Tenant, id string) (*account.IdentityProvider, error)
	ProviderSecret(t tenancy.Tenant, p *account.IdentityProvider) (string, error)
	FederatedLogin(ctx context.Context, t tenancy.Tenant, claims account.FederatedClaims, c account.Client) (account.FederatedOutcome, error)
	LinkWithPassword(ctx context.Context, t tenancy.Tenant, claims account.FederatedClaims, password string, c account.Client) (account.Tokens, *account.User, error)
	BeginConnectIdentity(ctx context.Context, t tenancy.Tenant, userID, sessionID string) error
	ConnectIdentity(ctx context.Context, t tenancy.Tenant, userID, sessionID string, claims account.FederatedClaims, c account.Client) error
	MFAChallengePending(ctx context.Context, t tenancy.Tenant, challenge string) (enrollmentRequired, passkeyOnly, ok bool)
}

// Host is what the flow needs from the server around it.
type Host interface {
	// Tenant is the active tenant of the request's host.
	Tenant(r *http.Request) (tenancy.Tenant, error)
	// Client describes the request's client for the rules and the audit log.
	Client(r *http.Request) account.Client
	// StartSession gives the browser the session a login opened, as a
	// login on the pages does (the session's cookies).
	StartSession(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, tokens account.Tokens)
	// User authenticates a user's access token in t: the user and session
	// it belongs to, while the session is open.
	User(ctx context.Context, t tenancy.Tenant, accessToken string) (userID, sessionID string, err error)
}

// Config configures a Service.
type Config struct {
	// KeyEncryptionKey derives the key of the flow's sealed cookies.
	KeyEncryptionKey string
	// Scheme is the scheme of the tenants' public URLs ("https", "http"
	// for development): the redirect URIs identity registers are
	// Scheme://{tenant host}/login/idp/{provider}/callback.
	Scheme string
	// HTTPClient calls providers; nil is a client with timeouts that
	// resolves localhost names to loopback.
	HTTPClient *http.Client
	// Endpoints of the presets; zero means DefaultEndpoints.
	Endpoints Endpoints
	// Secure says whether cookies for a host need the Secure attribute
	// (the server's rule for all its cookies); nil means always.
	Secure func(host string) bool
	Logger *slog.Logger
	Now    func() time.Time
}

// Service serves the flow's routes.
type Service struct {
	accounts  Accounts
	host      Host
	box       *sealbox.Box
	scheme    string
	secure    func(host string) bool
	upstreams *upstreams
	log       *slog.Logger
	now       func() time.Time
}

// New returns the flow's service.
func New(accounts Accounts, host Host, cfg Config) (*Service, error) {
	box, err := sealbox.New(cfg.KeyEncryptionKey, "federation cookies v1")
	if err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient()
	}
	if cfg.Endpoints == (Endpoints{}) {
		cfg.Endpoints = DefaultEndpoints
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "https"
	}
	if cfg.Secure == nil {
		cfg.Secure = func(string) bool { return true }
	}
	return &Service{
		accounts: accounts, host: host, box: box, scheme: cfg.Scheme, secure: cfg.Secure, log: cfg.Logger, now: cfg.Now,
		upstreams: &upstreams{client: cfg.HTTPClient, endpoints: cfg.Endpoints, discoveryTTL: time.Hour, now: cfg.Now,
			cached: map[string]cachedProvider{}},
	}, nil
}

// Paths of the flow.
const (
	pathPrefix  = "/login/idp/"
	LinkPath    = "/login/link"
	stateCookie = "tenantry_federation"
	linkCookie  = "tenantry_federation_link"
	// mfaCookie holds the MFA challenge of a sign-in whose account has a
	// second factor (or must enrol one), for the login page to ask for it.
	mfaCookie    = "tenantry_federation_mfa"
	mfaPath      = "/login"
	flowLifetime = 10 * time.Minute
)

// LoginPath is where a login with provider id starts.
func LoginPath(id string) string { return pathPrefix + id }

// CallbackURL is the redirect URI to register at a provider for a tenant
// host (host[:port]).
func (s *Service) CallbackURL(host, providerID string) string {
	return s.scheme + "://" + host + pathPrefix + providerID + "/callback"
}

// Routes are the flow's handlers by ServeMux pattern.
func (s *Service) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + pathPrefix + "{provider}":          http.HandlerFunc(s.startLogin),
		"POST " + pathPrefix + "{provider}/connect": http.HandlerFunc(s.startConnect),
		"GET " + pathPrefix + "{provider}/callback": http.HandlerFunc(s.callback),
	}
}

// Reasons the flow sends the browser back with, besides the rules' own
// (account.ReasonFederationNotLinked, ...); the pages explain each.
const (
	ReasonStateInvalid = "FEDERATION_STATE_INVALID"
	ReasonCancelled    = "FEDERATION_CANCELLED"
	ReasonFailed       = "FEDERATION_FAILED"
)

// purpose says what a flow is for.
type purpose string

const (
	purposeLogin   purpose = "login"
	purposeConnect purpose = "connect"
)

// flowState is what the state cookie holds.
type flowState struct {
	Provider string  `json:"p"`
	State    string  `json:"s"`
	Nonce    string  `json:"n"`
	Verifier string  `json:"v"`
	Purpose  purpose `json:"u"`
	Next     string  `json:"x,omitempty"`
	UserID   string  `json:"uid,omitempty"`
	Session  string  `json:"sid,omitempty"`
	Expires  int64   `json:"e"`
}

// pendingLink is what the link cookie holds: a provider's identity waiting
// for its owner to prove the account that has its email.
// pendingMFA is a sign-in waiting, at the login page, for its second
// factor.
type pendingMFA struct {
	Challenge string `json:"c"`
	Next      string `json:"x,omitempty"`
	Expires   int64  `json:"e"`
}

type pendingLink struct {
	Claims      account.FederatedClaims `json:"c"`
	DisplayName string                  `json:"d"`
	PasswordSet bool                    `json:"p"`
	Next        string                  `json:"x,omitempty"`
	Expires     int64                   `json:"e"`
}

func (s *Service) startLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Query().Get("next")
	if !pages.IsLocalPath(next) {
		next = ""
	}
	t, err := s.host.Tenant(r)
	if err != nil {
		s.back(w, r, purposeLogin, next, reasonOf(err))
		return
	}
	authURL, err := s.begin(w, r, t, flowState{Purpose: purposeLogin, Next: next})
	if err != nil {
		s.back(w, r, purposeLogin, next, reasonOf(err))
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// startConnect begins linking a provider to the account of the access
// token in the Authorization header: the account page's script calls it
// and sends the browser to the authorizationUrl of the JSON answer. A
// bearer header cannot come with a cross-site request, so this needs no
// other CSRF defence; and being a script's call rather than a form's, the
// redirect to the provider is not a form submission, which the pages'
// Content-Security-Policy (form-action 'self') would block.
func (s *Service) startConnect(w http.ResponseWriter, r *http.Request) {
	t, err := s.host.Tenant(r)
	if err != nil {
		restgateway.WriteError(w, r, err)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		restgateway.WriteError(w, r, fault.New(fault.Unauthenticated, "USER_TOKEN_REQUIRED",
			"send 'Authorization: Bearer <access token>' of the account to connect the provider to"))
		return
	}
	userID, sessionID, err := s.host.User(r.Context(), t, token)
	if err != nil {
		restgateway.WriteError(w, r, err)
		return
	}
	// Connecting needs a recent proof of the user: asked now, the page can
	// get it (REAUTHENTICATION_REQUIRED) before the browser leaves for the
	// provider. The callback's ConnectIdentity asks again.
	if err := s.accounts.BeginConnectIdentity(r.Context(), t, userID, sessionID); err != nil {
		restgateway.WriteError(w, r, err)
		return
	}
	authURL, err := s.begin(w, r, t, flowState{Purpose: purposeConnect, UserID: userID, Session: sessionID})
	if err != nil {
		if reasonOf(err) == ReasonFailed {
			err = fault.New(fault.Unavailable, ReasonFailed, "the provider cannot be reached now; try again later")
		}
		restgateway.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"authorizationUrl": authURL})
}

// begin makes a fresh state for st, sets its cookie and returns the
// provider's URL to send the browser to.
func (s *Service) begin(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, st flowState) (string, error) {
	ctx := r.Context()
	p, err := s.accounts.SignInProvider(ctx, t, r.PathValue("provider"))
	if err != nil {
		return "", err
	}
	up, err := s.upstream(ctx, t, p)
	if err != nil {
		return "", err
	}
	st.Provider, st.State, st.Nonce, st.Verifier = p.ID, rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	st.Expires = s.now().Add(flowLifetime).Unix()
	s.setCookie(w, r, t, stateCookie, pathPrefix, st)
	return up.authURL(s.CallbackURL(restgateway.RequestAuthority(r), p.ID), st.State, st.Nonce, st.Verifier), nil
}

func (s *Service) upstream(ctx context.Context, t tenancy.Tenant, p *account.IdentityProvider) (upstream, error) {
	secret, err := s.accounts.ProviderSecret(t, p)
	if err != nil {
		return nil, err
	}
	up, err := s.upstreams.get(ctx, t, p, secret)
	if err != nil {
		s.log.WarnContext(ctx, "identity provider unreachable", "tenant", t.Slug, "provider", p.ID, "err", err)
	}
	return up, err
}

// callback finishes a flow the provider sent the browser back from.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The state is single-use: whatever happens next, it is gone.
	s.clearCookie(w, r, stateCookie, pathPrefix)
	t, err := s.host.Tenant(r)
	if err != nil {
		s.back(w, r, purposeLogin, "", reasonOf(err))
		return
	}
	var st flowState
	query := r.URL.Query()
	if r.Method == http.MethodPost {
		// response_mode=form_post providers.
		_ = r.ParseForm()
		query = r.PostForm
	}
	if !s.readCookie(r, t, stateCookie, &st) || st.Provider != r.PathValue("provider") ||
		subtle.ConstantTimeCompare([]byte(st.State), []byte(query.Get("state"))) != 1 {
		s.back(w, r, purposeLogin, "", ReasonStateInvalid)
		return
	}
	if e := query.Get("error"); e != "" || query.Get("code") == "" {
		reason := ReasonFailed
		if e == "access_denied" {
			reason = ReasonCancelled
		}
		s.log.InfoContext(ctx, "identity provider returned no code", "tenant", t.Slug, "provider", st.Provider, "error", e)
		s.back(w, r, st.Purpose, st.Next, reason)
		return
	}
	p, err := s.accounts.SignInProvider(ctx, t, st.Provider)
	if err != nil {
		s.back(w, r, st.Purpose, st.Next, reasonOf(err))
		return
	}
	up, err := s.upstream(ctx, t, p)
	if err != nil {
		s.back(w, r, st.Purpose, st.Next, ReasonFailed)
		return
	}
	claims, err := up.exchange(ctx, s.CallbackURL(restgateway.RequestAuthority(r), p.ID), query.Get("code"), st.Nonce, st.Verifier)
	if err != nil {
		s.log.WarnContext(ctx, "sign-in with identity provider failed", "tenant", t.Slug, "provider", p.ID, "err", err)
		s.back(w, r, st.Purpose, st.Next, ReasonFailed)
		return
	}
	claims.ProviderID = p.ID
	c := s.host.Client(r)
	if st.Purpose == purposeConnect {
		if err := s.accounts.ConnectIdentity(ctx, t, st.UserID, st.Session, claims, c); err != nil {
			s.back(w, r, purposeConnect, "", reasonOf(err))
			return
		}
		http.Redirect(w, r, "/account?connected="+url.QueryEscape(p.ID), http.StatusSeeOther)
		return
	}
	out, err := s.accounts.FederatedLogin(ctx, t, claims, c)
	if err != nil {
		s.back(w, r, purposeLogin, st.Next, reasonOf(err))
		return
	}
	if out.ProofNeeded {
		s.setCookie(w, r, t, linkCookie, LinkPath, pendingLink{Claims: claims, DisplayName: p.DisplayName,
			PasswordSet: out.PasswordSet, Next: st.Next, Expires: s.now().Add(flowLifetime).Unix()})
		http.Redirect(w, r, LinkPath, http.StatusSeeOther)
		return
	}
	if out.Challenge != nil {
		// The provider stood in for the password, not for the second
		// factor: the login page asks for it, as after a password.
		s.setCookie(w, r, t, mfaCookie, mfaPath, pendingMFA{Challenge: out.Challenge.Token, Next: st.Next,
			Expires: out.Challenge.Expires.Unix()})
		target := mfaPath
		if st.Next != "" {
			target += "?" + url.Values{"next": {st.Next}}.Encode()
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	s.host.StartSession(w, r, t, out.Tokens)
	http.Redirect(w, r, nextOr(st.Next), http.StatusSeeOther)
}

// PendingMFA returns the MFA challenge of a sign-in with a provider that
// waits, in this browser, for the account's second factor (or for the
// enrolment of one, enrollmentRequired; passkeyOnly when a passkey is the
// account's only factor); false when none does, or it was used or expired.
func (s *Service) PendingMFA(r *http.Request) (challenge string, enrollmentRequired, passkeyOnly, ok bool) {
	t, err := s.host.Tenant(r)
	if err != nil {
		return "", false, false, false
	}
	var pm pendingMFA
	if !s.readCookie(r, t, mfaCookie, &pm) {
		return "", false, false, false
	}
	enrollmentRequired, passkeyOnly, ok = s.accounts.MFAChallengePending(r.Context(), t, pm.Challenge)
	return pm.Challenge, enrollmentRequired, passkeyOnly, ok
}

// ClearPendingMFA forgets the browser's pending sign-in (its challenge was
// used).
func (s *Service) ClearPendingMFA(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(mfaCookie); err == nil {
		s.clearCookie(w, r, mfaCookie, mfaPath)
	}
}

func nextOr(next string) string {
	if next == "" {
		return "/account"
	}
	return next
}

// back sends the browser to the page the flow started from, with the
// reason it ended: a fixed code the page explains, never free text.
func (s *Service) back(w http.ResponseWriter, r *http.Request, p purpose, next, reason string) {
	q := url.Values{"federation_error": {reason}}
	target := "/login"
	if p == purposeConnect {
		target = "/account"
	} else if next != "" {
		q.Set("next", next)
	}
	http.Redirect(w, r, target+"?"+q.Encode(), http.StatusSeeOther)
}

// reasonOf is the stable reason of a refusal, or ReasonFailed.
func reasonOf(err error) string {
	if f, ok := fault.As(err); ok && f.Kind != fault.Internal && f.Reason != "" {
		return f.Reason
	}
	return ReasonFailed
}

// PendingLink says, for the link page, which provider and email wait for
// proof of the account, and whether the account has a password to prove it
// with; false when no link is pending (or it expired).
func (s *Service) PendingLink(r *http.Request) (provider, email string, passwordSet, ok bool) {
	t, err := s.host.Tenant(r)
	if err != nil {
		return "", "", false, false
	}
	var pl pendingLink
	if !s.readCookie(r, t, linkCookie, &pl) {
		return "", "", false, false
	}
	return pl.DisplayName, pl.Claims.Email, pl.PasswordSet, true
}

// ErrNoPendingLink is LinkWithPassword's answer when no link waits.
var ErrNoPendingLink = fault.New(fault.FailedPrecondition, "FEDERATION_LINK_EXPIRED",
	"there is no sign-in waiting to be connected, or it took too long: sign in with the provider again")

// LinkWithPassword links the pending identity to the account with its
// email once password proves the account, logs the browser in and returns
// where to go next.
func (s *Service) LinkWithPassword(w http.ResponseWriter, r *http.Request, password string) (string, error) {
	t, err := s.host.Tenant(r)
	if err != nil {
		return "", err
	}
	var pl pendingLink
	if !s.readCookie(r, t, linkCookie, &pl) {
		return "", ErrNoPendingLink
	}
	tokens, _, err := s.accounts.LinkWithPassword(r.Context(), t, pl.Claims, password, s.host.Client(r))
	if err != nil {
		return "", err
	}
	s.clearCookie(w, r, linkCookie, LinkPath)
	s.host.StartSession(w, r, t, tokens)
	return nextOr(pl.Next), nil
}

// cookieAD binds a sealed cookie to its tenant and name: a cookie carried
// to another tenant's host, or into the other cookie, does not open.
func cookieAD(t tenancy.Tenant, name string) []byte {
	return []byte("federation cookie\x00" + t.UID + "\x00" + name)
}

func (s *Service) setCookie(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, name, path string, v any) {
	plain, err := json.Marshal(v)
	if err != nil {
		panic("federation: marshal cookie: " + err.Error()) // plain structs: cannot fail
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: base64.RawURLEncoding.EncodeToString(s.box.Seal(plain, cookieAD(t, name))),
		Path: path, MaxAge: int(flowLifetime / time.Second), HttpOnly: true,
		Secure: s.secure(restgateway.RequestHost(r)), SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: path, MaxAge: -1, HttpOnly: true,
		Secure: s.secure(restgateway.RequestHost(r)), SameSite: http.SameSiteLaxMode})
}

// readCookie opens a sealed cookie into v; false when it is missing,
// forged, another tenant's or expired.
func (s *Service) readCookie(r *http.Request, t tenancy.Tenant, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return false
	}
	plain, err := s.box.Open(sealed, cookieAD(t, name))
	if err != nil {
		return false
	}
	var exp struct {
		Expires int64 `json:"e"`
	}
	if json.Unmarshal(plain, &exp) != nil || s.now().Unix() >= exp.Expires {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}
