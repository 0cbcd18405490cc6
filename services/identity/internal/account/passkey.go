package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Passkeys (WebAuthn, through go-webauthn/webauthn: every check of an
// attestation or an assertion is the library's, none is written here).
// A passkey is registered from a signed-in account after a recent proof,
// and then works two ways: as the second factor of a login whose password
// was right (BeginPasskeyMFA, FinishPasskeyMFA), and alone, without a
// password (BeginPasskeyLogin, FinishPasskeyLogin), as a discoverable
// credential whose user handle names the account.
//
// What is refused, and how:
//   - Another tenant: the relying party id is the host the request came in
//     on, one of the tenant's domains (the server resolved the tenant from
//     it); the authenticator scopes a credential to it, and go-webauthn
//     checks the assertion's rpIdHash and the client data's origin against
//     it. A passkey of tenant A is not even offered on tenant B's host, and
//     an assertion made for A's host fails B's checks; its user handle names
//     no user in B's schema anyway.
//   - Replay: a ceremony's challenge is stored server-side (never trusted
//     from the client), by the hash of a random token, in the tenant's
//     schema; it is used up before the assertion is checked, whatever the
//     outcome, so each challenge is answered at most once, and it expires
//     after PasskeyCeremonyTTL.
//   - A cloned authenticator: when go-webauthn reports the sign counter
//     going backwards (CloneWarning), the use is refused and audited.
//   - Enumeration: every refusal of a login without a password is the same
//     PASSKEY_INVALID, whether or not a user or a passkey exists.

// PasskeyCeremonyTTL is how long a ceremony waits for its Finish call.
const PasskeyCeremonyTTL = 5 * time.Minute

// passkeyNameMax is the longest name a passkey may have, in characters.
const passkeyNameMax = 64

// FactorPasskey is a passkey used as the second factor.
const FactorPasskey Factor = "passkey"

// AMR values of passkeys (RFC 8176). A WebAuthn credential's private key
// lives in an authenticator (a security key, a platform's secure element
// or its synced keychain) and is proved by a signature: "hwk", proof of
// possession of a key the client software cannot read, fits better than
// "swk"; without attestation the server cannot tell them apart, and
// RFC 8176 has no value for "a key in an authenticator" beyond these two.
// The ceremonies require user verification (a PIN or a biometric on the
// authenticator), a second factor in itself, hence "mfa" for a passkey
// alone; "user" (presence) is implied by it and left out.
var (
	// AMRPasswordAndPasskey: a password, then a passkey as second factor
	// (after a mailed code or another provider, their value comes first
	// instead: withSecondFactor).
	AMRPasswordAndPasskey = []string{"pwd", "hwk", "mfa"}
	// AMRPasskey: a passkey alone, with user verification.
	AMRPasskey = []string{"hwk", "mfa"}
)

// Audit events of passkeys. Credentials and challenges are never in their
// details.
const (
	EventPasskeyRegistered   = "mfa.passkey_registered"
	EventPasskeyRenamed      = "mfa.passkey_renamed"
	EventPasskeyRemoved      = "mfa.passkey_removed"
	EventPasskeyUsed         = "mfa.passkey_used"
	EventPasskeyFailed       = "mfa.passkey_failed"
	EventPasskeyCloneWarning = "mfa.passkey_clone_warning"
)

// Outbox kinds of the passkeys' mails.
const (
	MailPasskeyAdded   = "passkey_added"
	MailPasskeyRemoved = "passkey_removed"
)

// Ceremony kinds: which Finish call a ceremony is for.
const (
	CeremonyRegister = "register"
	CeremonyLogin    = "login"
	CeremonyMFA      = "mfa"
	CeremonyReauth   = "reauth"
)

// Passkey is a WebAuthn credential of a user.
type Passkey struct {
	ID           string
	UserID       string
	CredentialID []byte
	// RPID is the relying party id (host) it was registered on.
	RPID        string
	DisplayName string
	// Credential is go-webauthn's record: public key, sign count, flags.
	Credential  webauthn.Credential
	CreateTime  time.Time
	LastUseTime time.Time
}

// PasskeyCeremony is a begun WebAuthn ceremony, stored by the hash of its
// token.
type PasskeyCeremony struct {
	TokenHash []byte
	Kind      string
	// UserID is the registering or second-factor user; empty for a login
	// without a password.
	UserID string
	// MFAChallengeHash is the hash of the MFA challenge an "mfa" ceremony
	// answers.
	MFAChallengeHash []byte
	Session          webauthn.SessionData
	CreateTime       time.Time
	ExpireTime       time.Time
}

// PasskeyTx is what a transaction does with passkeys.
type PasskeyTx interface {
	// Passkeys lists a user's passkeys, oldest first.
	Passkeys(ctx context.Context, userID string) ([]*Passkey, error)
	// PasskeyCount counts a user's passkeys.
	PasskeyCount(ctx context.Context, userID string) (int, error)
	InsertPasskey(ctx context.Context, p *Passkey) error
	// RecordPasskeyUse stores a passkey's credential after a use (its sign
	// counter and flags) and the time.
	RecordPasskeyUse(ctx context.Context, id string, cred webauthn.Credential, at time.Time) error
	// RenamePasskey renames a user's passkey; ErrNotFound when the user
	// has none of that id.
	RenamePasskey(ctx context.Context, userID, id, name string) (*Passkey, error)
	// DeletePasskey deletes a user's passkey; ErrNotFound when the user has
	// none of that id.
	DeletePasskey(ctx context.Context, userID, id string) error
	InsertPasskeyCeremony(ctx context.Context, c *PasskeyCeremony) error
	// UsePasskeyCeremony marks the ceremony of tokenHash used, if it is
	// unused and unexpired at at, and returns it; ErrNotFound otherwise.
	UsePasskeyCeremony(ctx context.Context, tokenHash []byte, at time.Time) (*PasskeyCeremony, error)
	// DeleteUserPasskeys deletes all of a user's passkeys (an admin's
	// reset of their factors).
	DeleteUserPasskeys(ctx context.Context, userID string) error
	// DeleteEndedPasskeyCeremonies deletes the ceremonies expired before
	// before, used or not.
	DeleteEndedPasskeyCeremonies(ctx context.Context, before time.Time) (int64, error)
}

// RelyingParty is where a ceremony happens: the tenant host of the request.
type RelyingParty struct {
	// ID is the host without its port.
	ID string
	// Origin is the origin the browser reports: https://host[:port], or
	// http:// for localhost names (development and tests).
	Origin string
}

// RelyingPartyOf is the relying party of a request that came in on host
// (with its port, if any), a domain of the tenant.
func RelyingPartyOf(host string) (RelyingParty, error) {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	id := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		id = h
	}
	if id == "" {
		return RelyingParty{}, errPasskeyHostRequired
	}
	scheme := "https"
	if id == "localhost" || strings.HasSuffix(id, ".localhost") {
		scheme = "http"
	}
	return RelyingParty{ID: id, Origin: scheme + "://" + host}, nil
}

// PasskeyOptions is a begun ceremony: the options for the browser (the
// `publicKey` member of navigator.credentials' argument, as JSON) and the
// token of the ceremony.
type PasskeyOptions struct {
	Options json.RawMessage
	Token   string
	Expires time.Time
}

var (
	errPasskeyHostRequired = fault.New(fault.FailedPrecondition, "PASSKEY_HOST_REQUIRED",
		"passkeys are bound to the tenant's host: call through the tenant's host (or send the metadata x-tenant-host)")
	errPasskeyCeremonyInvalid = fault.New(fault.Unauthenticated, "PASSKEY_CEREMONY_INVALID",
		"this passkey ceremony has expired or was used already; begin again")
	errPasskeyInvalid = fault.New(fault.Unauthenticated, "PASSKEY_INVALID",
		"this passkey was not accepted; try again, or log in another way")
	errPasskeyNotRegistered = fault.New(fault.FailedPrecondition, "PASSKEY_NOT_REGISTERED",
		"this account has no passkey for this site")
	errPasskeyNotFound = func(id string) error {
		return fault.New(fault.NotFound, "PASSKEY_NOT_FOUND", "you have no passkey %q", id)
	}
	errPasskeyAlreadyRegistered = fault.New(fault.AlreadyExists, "PASSKEY_ALREADY_REGISTERED",
		"this passkey is registered already")
	// errPasskeyRefused is an assertion that did not prove the passkey,
	// inside a transaction: rolled back, audited, then answered.
	errPasskeyRefused = errors.New("passkey assertion refused")
)

// errReauthWithPasskey is errReauthRequired for an account whose only
// factor is a passkey: BeginPasskeyReauthentication proves it.
var errReauthWithPasskey = fault.New(fault.PermissionDenied, "REAUTHENTICATION_REQUIRED",
	"confirm it is you first: use your passkey (BeginPasskeyReauthentication), then try again").WithMetadata("proof", "passkey")

// webauthnUser is a user as go-webauthn sees it. The user handle is the
// user id's 16 bytes: random (UUID v4), never reused, no personal data.
type webauthnUser struct {
	u        *User
	passkeys []*Passkey
}

func (w webauthnUser) WebAuthnID() []byte {
	id, err := uuid.Parse(w.u.ID)
	if err != nil {
		return []byte(w.u.ID)
	}
	return id[:]
}

func (w webauthnUser) WebAuthnName() string        { return w.u.Email }
func (w webauthnUser) WebAuthnDisplayName() string { return w.u.Email }

func (w webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(w.passkeys))
	for i, p := range w.passkeys {
		out[i] = p.Credential
	}
	return out
}

// userIDOfHandle is the user id a user handle names, or "".
func userIDOfHandle(handle []byte) string {
	id, err := uuid.FromBytes(handle)
	if err != nil {
		return ""
	}
	return id.String()
}

// relyingParties keeps one go-webauthn configuration per relying party;
// building one validates its configuration, which is not free.
type relyingParties struct {
	mu  sync.Mutex
	all map[RelyingParty]*webauthn.WebAuthn
}

func (r *relyingParties) get(t tenancy.Tenant, rp RelyingParty) (*webauthn.WebAuthn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.all[rp]; ok {
		return w, nil
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:          rp.ID,
		RPDisplayName: tenantName(t),
		RPOrigins:     []string{rp.Origin},
		// The ceremony's lifetime is the stored ceremony's (checked with
		// the manager's clock); the timeout only tells the browser.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: PasskeyCeremonyTTL, TimeoutUVD: PasskeyCeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: PasskeyCeremonyTTL, TimeoutUVD: PasskeyCeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("configure WebAuthn for %s: %w", rp.ID, err)
	}
	if r.all == nil || len(r.all) > 10_000 {
		r.all = map[RelyingParty]*webauthn.WebAuthn{}
	}
	r.all[rp] = w
	return w, nil
}

// passkeysFor keeps the passkeys registered on rp: the others cannot answer
// a ceremony of rp (their rpIdHash differs), so they are not offered.
func passkeysFor(all []*Passkey, rp RelyingParty) []*Passkey {
	var out []*Passkey
	for _, p := range all {
		if p.RPID == rp.ID {
			out = append(out, p)
		}
	}
	return out
}

// storeCeremony stores a begun ceremony in tx and returns its options.
func (m *Manager) storeCeremony(ctx context.Context, tx Tx, kind, userID string, mfaChallengeHash []byte, options any, session *webauthn.SessionData) (PasskeyOptions, error) {
	raw, err := json.Marshal(options)
	if err != nil {
		return PasskeyOptions{}, err
	}
	token, hash := newSecret()
	now := m.now()
	c := &PasskeyCeremony{TokenHash: hash, Kind: kind, UserID: userID, MFAChallengeHash: mfaChallengeHash,
		Session: *session, CreateTime: now, ExpireTime: now.Add(PasskeyCeremonyTTL)}
	if err := tx.InsertPasskeyCeremony(ctx, c); err != nil {
		return PasskeyOptions{}, err
	}
	return PasskeyOptions{Options: raw, Token: token, Expires: c.ExpireTime}, nil
}

// useCeremony uses up the ceremony of token, in a transaction of its own
// (so that a refused answer uses it too), and checks it is of kind, for
// userID (when not empty). Anything else is errPasskeyCeremonyInvalid.
func (m *Manager) useCeremony(ctx context.Context, t tenancy.Tenant, token, kind, userID string) (*PasskeyCeremony, error) {
	if token == "" || len(token) > 128 {
		return nil, fault.Invalid("ceremony_token", "PASSKEY_CEREMONY_REQUIRED", "give the ceremony token the Begin call answered")
	}
	var c *PasskeyCeremony
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		c, err = tx.UsePasskeyCeremony(ctx, hashSecret(token), m.now())
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, errPasskeyCeremonyInvalid
	}
	if err != nil {
		return nil, internal(err, "passkey ceremony")
	}
	if c.Kind != kind || (userID != "" && c.UserID != userID) {
		return nil, errPasskeyCeremonyInvalid
	}
	// The expiry is the stored ceremony's, checked above with the
	// manager's clock; go-webauthn would check its copy with the wall's.
	c.Session.Expires = time.Time{}
	return c, nil
}

// credentialJSON checks the shape of a credential a client sent.
func credentialJSON(raw []byte) error {
	if len(raw) == 0 || len(raw) > 64<<10 {
		return fault.Invalid("credential", "PASSKEY_CREDENTIAL_REQUIRED", "give the credential the browser made (PublicKeyCredential.toJSON())")
	}
	return nil
}

// hasSecondFactor reports whether u has a second factor: a confirmed
// authenticator app, or a passkey. totp is the app, when confirmed.
func hasSecondFactor(ctx context.Context, tx Tx, userID string) (totp *TOTPFactor, passkeys int, err error) {
	f, err := tx.TOTPFactor(ctx, userID, false)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, 0, err
	}
	if !f.Confirmed() {
		f = nil
	}
	n, err := tx.PasskeyCount(ctx, userID)
	return f, n, err
}

// BeginPasskeyRegistration begins adding a passkey to the user's account on
// rp. Adding a factor needs a recent proof, as for an authenticator app.
func (m *Manager) BeginPasskeyRegistration(ctx context.Context, t tenancy.Tenant, rp RelyingParty, userID string, c Client) (PasskeyOptions, error) {
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return PasskeyOptions{}, internal(err, "begin passkey registration")
	}
	var out PasskeyOptions
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		if err := m.requireRecentProof(ctx, tx, userID, c.SessionID, false); err != nil {
			return err
		}
		passkeys, err := tx.Passkeys(ctx, userID)
		if err != nil {
			return err
		}
		user := webauthnUser{u: u, passkeys: passkeysFor(passkeys, rp)}
		// A discoverable credential (the passkey itself names its user,
		// for logins without a password) with user verification (so that
		// it is two factors alone); the authenticators the user already
		// registered are excluded, not registered twice.
		creation, session, err := w.BeginRegistration(user,
			webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
				ResidentKey:      protocol.ResidentKeyRequirementRequired,
				UserVerification: protocol.VerificationRequired,
			}),
			webauthn.WithExclusions(webauthn.Credentials(user.WebAuthnCredentials()).CredentialDescriptors()),
		)
		if err != nil {
			return err
		}
		out, err = m.storeCeremony(ctx, tx, CeremonyRegister, userID, nil, creation.Response, session)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return PasskeyOptions{}, errSessionEnded
	}
	return out, internal(err, "begin passkey registration")
}

// FinishPasskeyRegistration stores the passkey the browser made for the
// ceremony of token (credential is its PublicKeyCredential.toJSON()), named
// name. The user is mailed.
func (m *Manager) FinishPasskeyRegistration(ctx context.Context, t tenancy.Tenant, rp RelyingParty, userID, token string, credential []byte, name string, c Client) (*Passkey, error) {
	name, err := passkeyName(name, true)
	if err != nil {
		return nil, err
	}
	if err := credentialJSON(credential); err != nil {
		return nil, err
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return nil, internal(err, "finish passkey registration")
	}
	cer, err := m.useCeremony(ctx, t, token, CeremonyRegister, userID)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return nil, m.passkeyRefused(ctx, t, userID, c, "registration", err)
	}
	var out *Passkey
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		cred, err := w.CreateCredential(webauthnUser{u: u}, cer.Session, parsed)
		if err != nil {
			return fmt.Errorf("%w: %w", errPasskeyRefused, err)
		}
		now := m.now()
		out = &Passkey{ID: newID(), UserID: userID, CredentialID: cred.ID, RPID: rp.ID, DisplayName: name,
			Credential: *cred, CreateTime: now}
		if err := tx.InsertPasskey(ctx, out); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventPasskeyRegistered, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"passkey": out.ID, "rp_id": rp.ID}}); err != nil {
			return err
		}
		if err := RecordAccountEvent(ctx, tx, t, userID, AccountFactorChanged); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, passkeyAddedMail(t, u.Email, name, []byte(out.ID)))
	})
	if errors.Is(err, errPasskeyRefused) {
		return nil, m.passkeyRefused(ctx, t, userID, c, "registration", err)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, errSessionEnded
	}
	if errors.Is(err, ErrPasskeyTaken) {
		return nil, errPasskeyAlreadyRegistered
	}
	return out, internal(err, "finish passkey registration")
}

// ErrPasskeyTaken: the credential id is registered already (to anyone in
// the tenant).
var ErrPasskeyTaken = errors.New("passkey registered already")

// passkeyRefused audits a ceremony's refused answer (why goes to the log,
// not to the client) and returns the answer.
func (m *Manager) passkeyRefused(ctx context.Context, t tenancy.Tenant, userID string, c Client, during string, why error) error {
	m.cfg.Logger.InfoContext(ctx, "passkey refused", "tenant", t.Slug, "during", during, "err", why)
	m.auditOutside(ctx, t, AuditEvent{Event: EventPasskeyFailed, UserID: userID, ClientIP: c.IP,
		Details: map[string]any{"during": during}})
	return errPasskeyInvalid
}

// BeginPasskeyLogin begins a login without a password on rp: the options
// name no user, the browser offers the passkeys it holds for rp.
func (m *Manager) BeginPasskeyLogin(ctx context.Context, t tenancy.Tenant, rp RelyingParty, c Client) (PasskeyOptions, error) {
	if err := m.checkPasskeyLoginLimits(ctx, t, c); err != nil {
		return PasskeyOptions{}, err
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return PasskeyOptions{}, internal(err, "begin passkey login")
	}
	assertion, session, err := w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return PasskeyOptions{}, internal(err, "begin passkey login")
	}
	var out PasskeyOptions
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		out, err = m.storeCeremony(ctx, tx, CeremonyLogin, "", nil, assertion.Response, session)
		return err
	})
	return out, internal(err, "begin passkey login")
}

// FinishPasskeyLogin checks the assertion answering the ceremony of token
// and opens a session for the user its passkey belongs to.
func (m *Manager) FinishPasskeyLogin(ctx context.Context, t tenancy.Tenant, rp RelyingParty, token string, credential []byte, c Client) (LoginResult, error) {
	res, err := m.finishPasskeyLogin(ctx, t, rp, token, credential, c)
	m.cfg.OnLogin(LoginPasskey, loginOutcome(err))
	return res, err
}

func (m *Manager) finishPasskeyLogin(ctx context.Context, t tenancy.Tenant, rp RelyingParty, token string, credential []byte, c Client) (LoginResult, error) {
	if token == "" || len(token) > 128 {
		return LoginResult{}, fault.Invalid("ceremony_token", "PASSKEY_CEREMONY_REQUIRED", "give the ceremony token the Begin call answered")
	}
	if err := credentialJSON(credential); err != nil {
		return LoginResult{}, err
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return LoginResult{}, internal(err, "passkey login")
	}
	// No limit is charged here: the ceremony was, at BeginPasskeyLogin,
	// and each Finish uses one up whatever the outcome, so attempts cannot
	// outnumber begun ceremonies (and a signature of a fresh challenge
	// cannot be guessed anyway).
	parsed, parseErr := protocol.ParseCredentialRequestResponseBytes(credential)
	userID := ""
	if parseErr == nil {
		userID = userIDOfHandle(parsed.Response.UserHandle)
	}
	// The ceremony is used up in the login's own transaction (one
	// transaction for the ordinary case); when anything refuses the
	// login, that use rolls back with the rest and burnCeremony uses it up
	// on its own.
	tokenHash := hashSecret(token)
	var (
		res    LoginResult
		used   *Passkey
		burnIt bool
	)
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		cer, err := tx.UsePasskeyCeremony(ctx, tokenHash, m.now())
		if errors.Is(err, ErrNotFound) {
			return errPasskeyCeremonyInvalid
		}
		if err != nil {
			return err
		}
		burnIt = true
		if cer.Kind != CeremonyLogin {
			return errPasskeyCeremonyInvalid
		}
		// The expiry was checked with the manager's clock; go-webauthn
		// would check its copy with the wall's.
		cer.Session.Expires = time.Time{}
		if parseErr != nil {
			return fmt.Errorf("%w: %w", errPasskeyRefused, parseErr)
		}
		if userID == "" {
			return errPasskeyRefused
		}
		var (
			user     *User
			passkeys []*Passkey
		)
		handler := func(_, handle []byte) (webauthn.User, error) {
			u, err := tx.UserByID(ctx, userIDOfHandle(handle), true)
			if err != nil {
				return nil, err
			}
			all, err := tx.Passkeys(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			user, passkeys = u, passkeysFor(all, rp)
			return webauthnUser{u: u, passkeys: passkeys}, nil
		}
		_, cred, err := w.ValidatePasskeyLogin(handler, cer.Session, parsed)
		if err != nil {
			return fmt.Errorf("%w: %w", errPasskeyRefused, err)
		}
		if used, err = m.recordPasskeyUse(ctx, tx, passkeys, cred, c, "login"); err != nil {
			return err
		}
		if user.Disabled {
			return errDisabled
		}
		now := m.now()
		user.LastLoginTime = now
		if err := tx.RecordLogin(ctx, user.ID, now, ""); err != nil {
			return err
		}
		tokens, err := m.openSession(ctx, tx, t, user, c, AMRPasskey)
		if err != nil {
			return err
		}
		res = LoginResult{Tokens: tokens, User: user}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: user.ID, ClientIP: c.IP,
			Details: map[string]any{"session": tokens.SessionID, "passkey": used.ID}})
	})
	if err != nil && burnIt {
		m.burnCeremony(ctx, t, tokenHash)
	}
	if errors.Is(err, errPasskeyCloned) {
		m.auditOutside(ctx, t, AuditEvent{Event: EventPasskeyCloneWarning, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"during": "login"}})
		return LoginResult{}, errPasskeyInvalid
	}
	if errors.Is(err, errPasskeyRefused) || errors.Is(err, ErrNotFound) {
		return LoginResult{}, m.passkeyRefused(ctx, t, userID, c, "login", err)
	}
	if err != nil {
		return LoginResult{}, internal(err, "passkey login")
	}
	return res, nil
}

// burnCeremony uses up a ceremony whose login was refused (its use rolled
// back with the login's transaction); a failure only goes to the log, the
// ceremony expiring soon anyway.
func (m *Manager) burnCeremony(ctx context.Context, t tenancy.Tenant, tokenHash []byte) {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, err := tx.UsePasskeyCeremony(ctx, tokenHash, m.now())
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "could not use up a refused passkey ceremony", "tenant", t.Slug, "err", err)
	}
}

// checkPasskeyLoginLimits applies the limits of a step of a login by
// passkey (the address's and the tenant's login budgets, at the tenant's
// ceiling), and records a refusal.
func (m *Manager) checkPasskeyLoginLimits(ctx context.Context, t tenancy.Tenant, c Client) error {
	perSecond, err := m.loginCeiling(ctx, t)
	if err != nil {
		return err
	}
	if err := m.limits.PasskeyLogin(ctx, t.UID, c.IP, perSecond); err != nil {
		m.auditOutside(ctx, t, AuditEvent{Event: EventLoginRateLimited, ClientIP: c.IP, Details: map[string]any{"during": "passkey login"}})
		return err
	}
	return nil
}

// errPasskeyCloned is a use go-webauthn flagged with its clone warning.
var errPasskeyCloned = errors.New("passkey sign counter went backwards: a cloned authenticator?")

// recordPasskeyUse stores what an accepted assertion changed of its passkey
// (one of passkeys) and audits the use. A clone warning refuses the use:
// two authenticators answering for one credential means its key leaked.
func (m *Manager) recordPasskeyUse(ctx context.Context, tx Tx, passkeys []*Passkey, cred *webauthn.Credential, c Client, during string) (*Passkey, error) {
	var p *Passkey
	for _, k := range passkeys {
		if string(k.CredentialID) == string(cred.ID) {
			p = k
		}
	}
	if p == nil {
		return nil, errPasskeyRefused // go-webauthn checked it is one of them
	}
	if cred.Authenticator.CloneWarning {
		return nil, errPasskeyCloned
	}
	if err := tx.RecordPasskeyUse(ctx, p.ID, *cred, m.now()); err != nil {
		return nil, err
	}
	return p, tx.Audit(ctx, AuditEvent{Event: EventPasskeyUsed, UserID: p.UserID, ClientIP: c.IP,
		Details: map[string]any{"passkey": p.ID, "during": during}})
}

// BeginPasskeyMFA answers a login's MFA challenge with the options of an
// assertion by one of its user's passkeys on rp.
func (m *Manager) BeginPasskeyMFA(ctx context.Context, t tenancy.Tenant, rp RelyingParty, challenge string, c Client) (PasskeyOptions, error) {
	if challenge == "" || len(challenge) > 128 {
		return PasskeyOptions{}, fault.Invalid("mfa_challenge", "MFA_CHALLENGE_REQUIRED", "give the challenge of your login's first step")
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return PasskeyOptions{}, internal(err, "begin passkey second factor")
	}
	var out PasskeyOptions
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		_, u, err := m.challengeOf(ctx, tx, challenge)
		if err != nil {
			return err
		}
		all, err := tx.Passkeys(ctx, u.ID)
		if err != nil {
			return err
		}
		passkeys := passkeysFor(all, rp)
		if len(passkeys) == 0 {
			return errPasskeyNotRegistered
		}
		assertion, session, err := w.BeginLogin(webauthnUser{u: u, passkeys: passkeys},
			webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return err
		}
		out, err = m.storeCeremony(ctx, tx, CeremonyMFA, u.ID, hashSecret(challenge), assertion.Response, session)
		return err
	})
	return out, internal(err, "begin passkey second factor")
}

// FinishPasskeyMFA checks the assertion answering the ceremony of token and
// completes the login of challenge, as VerifyMFA does with a code.
func (m *Manager) FinishPasskeyMFA(ctx context.Context, t tenancy.Tenant, rp RelyingParty, challenge, token string, credential []byte, c Client) (LoginResult, error) {
	res, err := m.finishPasskeyMFA(ctx, t, rp, challenge, token, credential, c)
	m.cfg.OnLogin(LoginMFA, loginOutcome(err))
	return res, err
}

func (m *Manager) finishPasskeyMFA(ctx context.Context, t tenancy.Tenant, rp RelyingParty, challenge, token string, credential []byte, c Client) (LoginResult, error) {
	if challenge == "" || len(challenge) > 128 {
		return LoginResult{}, fault.Invalid("mfa_challenge", "MFA_CHALLENGE_REQUIRED", "give the challenge of your login's first step")
	}
	if err := credentialJSON(credential); err != nil {
		return LoginResult{}, err
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return LoginResult{}, internal(err, "passkey second factor")
	}
	cer, err := m.useCeremony(ctx, t, token, CeremonyMFA, "")
	if err != nil {
		return LoginResult{}, err
	}
	if string(cer.MFAChallengeHash) != string(hashSecret(challenge)) {
		return LoginResult{}, errPasskeyCeremonyInvalid
	}
	if err := m.checkSecondFactorLimits(ctx, t, cer.UserID, c, "login"); err != nil {
		return LoginResult{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return LoginResult{}, m.passkeyRefused(ctx, t, cer.UserID, c, "login", err)
	}
	var res LoginResult
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		tok, u, err := m.challengeOf(ctx, tx, challenge)
		if err != nil {
			return err
		}
		if u.ID != cer.UserID {
			return errPasskeyCeremonyInvalid
		}
		if u.Disabled {
			return errDisabled
		}
		all, err := tx.Passkeys(ctx, u.ID)
		if err != nil {
			return err
		}
		passkeys := passkeysFor(all, rp)
		cred, err := w.ValidateLogin(webauthnUser{u: u, passkeys: passkeys}, cer.Session, parsed)
		if err != nil {
			return fmt.Errorf("%w: %w", errPasskeyRefused, err)
		}
		used, err := m.recordPasskeyUse(ctx, tx, passkeys, cred, c, "login")
		if err != nil {
			return err
		}
		now := m.now()
		if err := tx.UseToken(ctx, tok.Hash, now); err != nil {
			return err
		}
		u.LastLoginTime = now
		if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
			return err
		}
		tokens, err := m.openSession(ctx, tx, t, u, c, withSecondFactor(tok.AMR, "hwk"))
		if err != nil {
			return err
		}
		res = LoginResult{Tokens: tokens, User: u}
		return tx.Audit(ctx, AuditEvent{Event: EventLogin, UserID: u.ID, ClientIP: c.IP,
			Details: map[string]any{"session": tokens.SessionID, "mfa": string(FactorPasskey), "passkey": used.ID}})
	})
	if errors.Is(err, errPasskeyCloned) {
		m.auditOutside(ctx, t, AuditEvent{Event: EventPasskeyCloneWarning, UserID: cer.UserID, ClientIP: c.IP,
			Details: map[string]any{"during": "login"}})
		return LoginResult{}, errPasskeyInvalid
	}
	if errors.Is(err, errPasskeyRefused) {
		return LoginResult{}, m.passkeyRefused(ctx, t, cer.UserID, c, "login", err)
	}
	if err != nil {
		return LoginResult{}, internal(err, "passkey second factor")
	}
	return res, nil
}

// Passkeys lists a user's passkeys, oldest first.
func (m *Manager) Passkeys(ctx context.Context, t tenancy.Tenant, userID string) ([]*Passkey, error) {
	var out []*Passkey
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.Passkeys(ctx, userID)
		return err
	})
	return out, internal(err, "list passkeys")
}

// RenamePasskey renames one of a user's passkeys.
func (m *Manager) RenamePasskey(ctx context.Context, t tenancy.Tenant, userID, id, name string, c Client) (*Passkey, error) {
	name, err := passkeyName(name, false)
	if err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, errPasskeyNotFound(id)
	}
	var out *Passkey
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if out, err = tx.RenamePasskey(ctx, userID, id, name); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventPasskeyRenamed, UserID: userID, ClientIP: c.IP, Details: map[string]any{"passkey": id}})
	})
	if errors.Is(err, ErrNotFound) {
		return nil, errPasskeyNotFound(id)
	}
	return out, internal(err, "rename passkey")
}

// DeletePasskey removes one of a user's passkeys, after a recent proof;
// the last factor of an account whose tenant requires one stays. The user
// is mailed.
func (m *Manager) DeletePasskey(ctx context.Context, t tenancy.Tenant, userID, id string, c Client) error {
	if _, err := uuid.Parse(id); err != nil {
		return errPasskeyNotFound(id)
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, true)
		if err != nil {
			return err
		}
		if err := m.requireRecentProof(ctx, tx, userID, c.SessionID, false); err != nil {
			return err
		}
		all, err := tx.Passkeys(ctx, userID)
		if err != nil {
			return err
		}
		var p *Passkey
		for _, k := range all {
			if k.ID == id {
				p = k
			}
		}
		if p == nil {
			return errPasskeyNotFound(id)
		}
		totp, n, err := hasSecondFactor(ctx, tx, userID)
		if err != nil {
			return err
		}
		if totp == nil && n == 1 {
			settings, err := tx.Settings(ctx)
			if err != nil {
				return err
			}
			if settings.MFAPolicy.requires(u) {
				return errMFARequiredByTenant
			}
		}
		if err := tx.DeletePasskey(ctx, userID, id); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventPasskeyRemoved, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"passkey": id, "rp_id": p.RPID}}); err != nil {
			return err
		}
		if err := RecordAccountEvent(ctx, tx, t, userID, AccountFactorChanged); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, passkeyRemovedMail(t, u.Email, p.DisplayName, []byte(id)))
	})
	if errors.Is(err, ErrNotFound) {
		return errSessionEnded
	}
	return internal(err, "remove passkey")
}

// passkeyName checks a passkey's name; empty is "Passkey" when allowed.
func passkeyName(name string, emptyOK bool) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" && emptyOK {
		return "Passkey", nil
	}
	if name == "" || utf8.RuneCountInString(name) > passkeyNameMax || !utf8.ValidString(name) ||
		strings.ContainsAny(name, "\r\n\t") {
		return "", fault.Invalid("display_name", "PASSKEY_NAME_INVALID", "give the passkey a name of 1 to %d characters on one line", passkeyNameMax)
	}
	return name, nil
}

func passkeyAddedMail(t tenancy.Tenant, to, name string, key []byte) letter {
	return letter{kind: MailPasskeyAdded, to: to, dedupeKey: dedupe(MailPasskeyAdded, key), Letter: emails.Letter{
		Subject: say("A passkey was added to your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("A passkey (%q) was just added to your account at %s: it can now log you in, or stand in for your authenticator app's code.",
			name, emails.TenantName)},
		After: []emails.Text{say("If it was not you, remove it from your account page, reset your password at once and contact an administrator.")},
	}}
}

func passkeyRemovedMail(t tenancy.Tenant, to, name string, key []byte) letter {
	return letter{kind: MailPasskeyRemoved, to: to, dedupeKey: dedupe(MailPasskeyRemoved, key), Letter: emails.Letter{
		Subject:    say("A passkey was removed from your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("The passkey %q was just removed from your account at %s: it no longer logs you in.", name, emails.TenantName)},
		After:      []emails.Text{say("If it was not you, reset your password at once and contact an administrator.")},
	}}
}

// BeginPasskeyReauthentication begins a proof given again with one of the
// user's passkeys on rp, for the sensitive actions of their session (see
// reauth.go): an account whose only factor is a passkey has no code to
// give Reauthenticate.
func (m *Manager) BeginPasskeyReauthentication(ctx context.Context, t tenancy.Tenant, rp RelyingParty, userID string, c Client) (PasskeyOptions, error) {
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return PasskeyOptions{}, internal(err, "begin passkey reauthentication")
	}
	var out PasskeyOptions
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		u, err := tx.UserByID(ctx, userID, false)
		if err != nil {
			return err
		}
		all, err := tx.Passkeys(ctx, userID)
		if err != nil {
			return err
		}
		passkeys := passkeysFor(all, rp)
		if len(passkeys) == 0 {
			return errPasskeyNotRegistered
		}
		assertion, session, err := w.BeginLogin(webauthnUser{u: u, passkeys: passkeys},
			webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return err
		}
		out, err = m.storeCeremony(ctx, tx, CeremonyReauth, userID, nil, assertion.Response, session)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return PasskeyOptions{}, errSessionEnded
	}
	return out, internal(err, "begin passkey reauthentication")
}

// FinishPasskeyReauthentication checks the assertion answering the
// ceremony of token and records the proof in the user's session, as
// Reauthenticate does. It returns when the proof stops counting.
func (m *Manager) FinishPasskeyReauthentication(ctx context.Context, t tenancy.Tenant, rp RelyingParty, userID, sessionID, token string, credential []byte, c Client) (time.Time, error) {
	if err := credentialJSON(credential); err != nil {
		return time.Time{}, err
	}
	w, err := m.passkeyRPs.get(t, rp)
	if err != nil {
		return time.Time{}, internal(err, "passkey reauthentication")
	}
	cer, err := m.useCeremony(ctx, t, token, CeremonyReauth, userID)
	if err != nil {
		return time.Time{}, err
	}
	if err := m.checkSecondFactorLimits(ctx, t, userID, c, "reauthentication"); err != nil {
		return time.Time{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return time.Time{}, m.passkeyRefused(ctx, t, userID, c, "reauthentication", err)
	}
	now := m.now()
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		s, err := tx.Session(ctx, sessionID, true)
		if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || !s.Open(now))) {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, userID, false)
		if err != nil {
			return err
		}
		all, err := tx.Passkeys(ctx, userID)
		if err != nil {
			return err
		}
		passkeys := passkeysFor(all, rp)
		cred, err := w.ValidateLogin(webauthnUser{u: u, passkeys: passkeys}, cer.Session, parsed)
		if err != nil {
			return fmt.Errorf("%w: %w", errPasskeyRefused, err)
		}
		if _, err := m.recordPasskeyUse(ctx, tx, passkeys, cred, c, "reauthentication"); err != nil {
			return err
		}
		amr := []string{"hwk", "mfa"}
		if err := tx.RecordReauth(ctx, sessionID, now, amr); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventReauthenticated, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"session": sessionID, "amr": amr}})
	})
	if errors.Is(err, errPasskeyCloned) {
		m.auditOutside(ctx, t, AuditEvent{Event: EventPasskeyCloneWarning, UserID: userID, ClientIP: c.IP,
			Details: map[string]any{"during": "reauthentication"}})
		return time.Time{}, errPasskeyInvalid
	}
	if errors.Is(err, errPasskeyRefused) {
		return time.Time{}, m.passkeyRefused(ctx, t, userID, c, "reauthentication", err)
	}
	if err != nil {
		return time.Time{}, internal(err, "passkey reauthentication")
	}
	return now.Add(ReauthWindow), nil
}
