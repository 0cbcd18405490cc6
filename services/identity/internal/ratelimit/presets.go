package ratelimit

import (
	"net/netip"
	"strings"
	"time"
)

// The preset limits. Each operation has four, following the package's
// philosophy: a tight limit per account and client address, a looser one per
// account (several times the tight one, so an attacker at one address can use
// only a fraction of it), one per client address across accounts, and a
// ceiling per tenant. They are variables so that configuration and tests can
// change them; change them before serving, not concurrently with checks.
var (
	// LoginPerAccountAddress: someone mistyping a password gets 10 attempts
	// in a row, then one every 12 seconds — enough for a person, hopeless for
	// guessing.
	LoginPerAccountAddress = Limit{Name: "login.account_address", Rate: 5, Per: time.Minute, Burst: 10}
	// LoginPerAccount bounds guessing from many addresses. At four times the
	// per-address rate, an attacker needs at least four addresses before the
	// owner is even slowed down.
	LoginPerAccount = Limit{Name: "login.account", Rate: 20, Per: time.Minute, Burst: 40}
	// LoginPerAddress bounds one address trying many accounts (credential
	// stuffing). An office behind one NAT logging in at nine o'clock stays
	// well below it.
	LoginPerAddress = Limit{Name: "login.address", Rate: 60, Per: time.Minute, Burst: 120}
	// LoginPerTenant is the tenant's ceiling at its default rate, 50 logins
	// a second, for a tenant that has not set its own: it caps the password
	// hashing one tenant's logins can cost, far above most tenants' organic
	// peaks. Each tenant may set its own rate (a large tenant's legitimate
	// peak can be higher than one machine can hash); LoginChecks takes it,
	// and LoginPerTenantAt shapes it.
	LoginPerTenant = LoginPerTenantAt(50)

	// SecondFactorPerAccountAddress: a second factor's code (an
	// authenticator app's, or a recovery code) mistyped gets 5 attempts in
	// a row, then one every 12 seconds. Only someone who gave the right
	// password gets to try a code at all.
	SecondFactorPerAccountAddress = Limit{Name: "second_factor.account_address", Rate: 5, Per: time.Minute, Burst: 5}
	// SecondFactorPerAccount bounds guessing codes from many addresses. A
	// 6-digit code, with one step of skew either side, is 3 chances in a
	// million a guess, so the budget is far below the password's: 10 at
	// once, then 30 an hour, about 730 guesses a day, a 0.2% chance a day.
	SecondFactorPerAccount = Limit{Name: "second_factor.account", Rate: 30, Per: time.Hour, Burst: 10}

	// PasswordResetPerAccountAddress: each request sends mail, so three,
	// then one every 20 minutes.
	PasswordResetPerAccountAddress = Limit{Name: "password_reset.account_address", Rate: 3, Per: time.Hour, Burst: 3}
	// PasswordResetPerAccount caps the mail one inbox can be sent, while
	// leaving room for the owner when one address has used its share.
	PasswordResetPerAccount = Limit{Name: "password_reset.account", Rate: 10, Per: time.Hour, Burst: 5}
	// PasswordResetPerAddress bounds one address requesting resets for a list
	// of accounts.
	PasswordResetPerAddress = Limit{Name: "password_reset.address", Rate: 20, Per: time.Hour, Burst: 10}
	// PasswordResetPerTenant is the tenant's ceiling on reset mail; raise it
	// for a tenant that forces a reset on all its users at once.
	PasswordResetPerTenant = Limit{Name: "password_reset.tenant", Rate: 20, Per: time.Minute, Burst: 200}

	// LoginCodePerAccountAddress, LoginCodePerAccount, LoginCodePerAddress
	// and LoginCodePerTenant bound the login codes mailed (each request
	// sends mail): the password reset's shapes, budgets of their own.
	LoginCodePerAccountAddress = Limit{Name: "login_code.account_address", Rate: 3, Per: time.Hour, Burst: 3}
	LoginCodePerAccount        = Limit{Name: "login_code.account", Rate: 10, Per: time.Hour, Burst: 5}
	LoginCodePerAddress        = Limit{Name: "login_code.address", Rate: 20, Per: time.Hour, Burst: 10}
	LoginCodePerTenant         = Limit{Name: "login_code.tenant", Rate: 20, Per: time.Minute, Burst: 200}

	// VerificationPerAccountAddress limits requests for (re)sending a
	// verification message: three, then one every 12 minutes.
	VerificationPerAccountAddress = Limit{Name: "verification.account_address", Rate: 5, Per: time.Hour, Burst: 3}
	// VerificationPerAccount caps the verification mail one mailbox
	// receives, with room for the owner.
	VerificationPerAccount = Limit{Name: "verification.account", Rate: 10, Per: time.Hour, Burst: 5}
	// VerificationPerAddress bounds one client address signing up, or
	// resending for, many accounts.
	VerificationPerAddress = Limit{Name: "verification.address", Rate: 30, Per: time.Hour, Burst: 10}
	// VerificationPerTenant is the tenant's ceiling on verification mail.
	VerificationPerTenant = Limit{Name: "verification.tenant", Rate: 20, Per: time.Minute, Burst: 200}

	// SignUpPerAccountAddress limits sign-ups with one email address from
	// one client address: ten, then one every six minutes. A person signs
	// up once, or a few times when a mail is slow; each further sign-up
	// with a registered address is a password hash and a mail to its
	// owner (those mails are also deduplicated to one an hour).
	SignUpPerAccountAddress = Limit{Name: "signup.account_address", Rate: 10, Per: time.Hour, Burst: 10}
	// SignUpPerAccount bounds the sign-ups with one email address from
	// many client addresses, leaving the owner room.
	SignUpPerAccount = Limit{Name: "signup.account", Rate: 30, Per: time.Hour, Burst: 20}
	// SignUpPerAddress bounds one client address signing up with many
	// email addresses, each of which may be mailed (a taken username is
	// told to the address given), at its default of 200 an hour, all at
	// once if need be: a school or an office behind one NAT signing up
	// together stays below it. The service's configuration may change it
	// (SignUpPerAddressAt).
	SignUpPerAddress = SignUpPerAddressAt(DefaultSignUpsPerAddressPerHour)
)

// DefaultSignUpsPerAddressPerHour is how many sign-ups one client address
// may make in one tenant an hour unless configured otherwise.
const DefaultSignUpsPerAddressPerHour = 200

// SignUpPerAddressAt returns the per-client-address sign-up limit at
// perHour sign-ups an hour, an hour's worth at once. Its name, and so its
// stored state, is the same at every rate.
func SignUpPerAddressAt(perHour int) Limit {
	return Limit{Name: "signup.address", Rate: perHour, Per: time.Hour, Burst: perHour}
}

// SignUpPerTenantAt returns the tenant's sign-up ceiling at perSecond
// sign-ups a second, with loginTenantBurst seconds' worth at once: the
// login ceiling's shape and rate (each sign-up is a password hash, as a
// login is), with a state of its own, so that a flood of sign-ups does
// not refuse the tenant's logins, nor logins its sign-ups.
func SignUpPerTenantAt(perSecond int) Limit {
	return Limit{Name: "signup.tenant", Rate: perSecond, Per: time.Second, Burst: loginTenantBurst * perSecond}
}

// loginTenantBurst is how many seconds' worth of logins a tenant's ceiling
// lets through at once, whatever its rate.
const loginTenantBurst = 5

// LoginPerTenantAt returns the tenant's login ceiling at perSecond logins a
// second, with loginTenantBurst seconds' worth as its burst. Its name, and
// so its stored state, is the same at every rate, and the burst always
// spans the same five seconds: a tenant's new rate applies from its next
// login, to the state its logins built so far, without any refusal the new
// rate itself would not make.
func LoginPerTenantAt(perSecond int) Limit {
	return Limit{Name: "login.tenant", Rate: perSecond, Per: time.Second, Burst: loginTenantBurst * perSecond}
}

// LoginChecks returns the checks for a login attempt in tenant for account,
// the identifier the client submitted (such as an email address), from
// clientIP, the client's address as the trusted proxy chain reports it,
// with the tenant's ceiling at tenantPerSecond logins a second (below 1:
// [LoginPerTenant], the default). Pass them to [Limiter.AllowAll] before
// verifying the password, whether or not the account exists.
func LoginChecks(tenant, account, clientIP string, tenantPerSecond int) []Check {
	perTenant := LoginPerTenant
	if tenantPerSecond >= 1 {
		perTenant = LoginPerTenantAt(tenantPerSecond)
	}
	return presetChecks(tenant, account, clientIP,
		LoginPerAccountAddress, LoginPerAccount, LoginPerAddress, perTenant)
}

// SecondFactorChecks returns the checks for an attempt at userID's second
// factor in tenant (a code at login, or to enrol, remove or regenerate)
// from clientIP, with the tenant's login ceiling at tenantPerSecond. The
// per-account limits are the codes' own, keyed by the user's id; the
// per-address and per-tenant ones are the logins' very budgets (same
// names, same scopes): a code is a login attempt. Pass them to
// [Limiter.AllowAll] before checking the code.
func SecondFactorChecks(tenant, userID, clientIP string, tenantPerSecond int) []Check {
	perTenant := LoginPerTenant
	if tenantPerSecond >= 1 {
		perTenant = LoginPerTenantAt(tenantPerSecond)
	}
	return presetChecks(tenant, userID, clientIP,
		SecondFactorPerAccountAddress, SecondFactorPerAccount, LoginPerAddress, perTenant)
}

// PasskeyLoginChecks returns the checks for a step of a login by passkey
// without a password, from clientIP in tenant, with the tenant's login
// ceiling at tenantPerSecond: the logins' per-address and per-tenant
// budgets (a passkey login is a login). No account is named before the
// assertion, and an assertion cannot be guessed (it is a signature of a
// fresh challenge), so there is no per-account budget to spend.
func PasskeyLoginChecks(tenant, clientIP string, tenantPerSecond int) []Check {
	perTenant := LoginPerTenant
	if tenantPerSecond >= 1 {
		perTenant = LoginPerTenantAt(tenantPerSecond)
	}
	return []Check{
		{Limit: LoginPerAddress, Parts: []string{tenant, clientScope(clientIP)}},
		{Limit: perTenant, Parts: []string{tenant}},
	}
}

// LoginCodeChecks returns the checks for a request to mail a login code,
// with the same arguments as [PasswordResetChecks]; the answer must not
// reveal whether the account exists.
func LoginCodeChecks(tenant, account, clientIP string) []Check {
	return presetChecks(tenant, account, clientIP,
		LoginCodePerAccountAddress, LoginCodePerAccount, LoginCodePerAddress, LoginCodePerTenant)
}

// PasswordResetChecks returns the checks for a request to send a password
// reset, with the same arguments as [LoginChecks]. Whether refused or not, the
// response to the client should not reveal whether the account exists.
func PasswordResetChecks(tenant, account, clientIP string) []Check {
	return presetChecks(tenant, account, clientIP,
		PasswordResetPerAccountAddress, PasswordResetPerAccount, PasswordResetPerAddress, PasswordResetPerTenant)
}

// VerificationChecks returns the checks for a request to send (or resend) an
// email verification message, with the same arguments as [LoginChecks];
// account may be the account's id when the client is signed in.
func VerificationChecks(tenant, account, clientIP string) []Check {
	return presetChecks(tenant, account, clientIP,
		VerificationPerAccountAddress, VerificationPerAccount, VerificationPerAddress, VerificationPerTenant)
}

// SignUpChecks returns the checks for a sign-up in tenant with account,
// the email address submitted, from clientIP: the [SignUpPerAccountAddress]
// and [SignUpPerAccount] limits, perAddressPerHour sign-ups an hour from
// the client address (below 1: [SignUpPerAddress], the default), and the
// tenant's ceiling at tenantPerSecond, its login ceiling's rate (below 1:
// the default login ceiling's). Pass them to [Limiter.AllowAll] before
// hashing the password, whether or not the address is registered, so
// that a refusal says nothing about it.
func SignUpChecks(tenant, account, clientIP string, perAddressPerHour, tenantPerSecond int) []Check {
	perAddress := SignUpPerAddress
	if perAddressPerHour >= 1 {
		perAddress = SignUpPerAddressAt(perAddressPerHour)
	}
	if tenantPerSecond < 1 {
		tenantPerSecond = LoginPerTenant.Rate
	}
	return presetChecks(tenant, account, clientIP,
		SignUpPerAccountAddress, SignUpPerAccount, perAddress, SignUpPerTenantAt(tenantPerSecond))
}

// presetChecks applies the four preset scopes.
func presetChecks(tenant, account, clientIP string, perAccountAddress, perAccount, perAddress, perTenant Limit) []Check {
	account, address := normalizeAccount(account), clientScope(clientIP)
	return []Check{
		{Limit: perAccountAddress, Parts: []string{tenant, account, address}},
		{Limit: perAccount, Parts: []string{tenant, account}},
		{Limit: perAddress, Parts: []string{tenant, address}},
		{Limit: perTenant, Parts: []string{tenant}},
	}
}

// normalizeAccount folds case and surrounding space, so that "Alice@x.org"
// and " alice@x.org" do not get a budget each. At worst two identifiers that
// differ only in case share a budget.
func normalizeAccount(account string) string {
	return strings.ToLower(strings.TrimSpace(account))
}

// clientScope returns the scope of a client address: an IPv4 address itself
// (IPv4-mapped IPv6 addresses included), and an IPv6 address's /64 network,
// since a single subscriber is typically given a whole /64 and could
// otherwise take a new address for every request. A port or zone is dropped.
// Anything unparsable is used as given; it is hashed like every scope.
func clientScope(clientIP string) string {
	s := strings.TrimSpace(clientIP)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return s
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
