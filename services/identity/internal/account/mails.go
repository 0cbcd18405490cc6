package account

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/identity/internal/i18n"
	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/tenantname"
)

// Mail kinds, as recorded in the outbox.
const (
	MailVerification   = "verification"
	MailAccountExists  = "account_exists"
	MailWelcome        = "welcome"
	MailReset          = "password_reset"
	MailUnknownAccount = "unknown_account"
	MailPasswordChange = "password_changed"
	MailEmailChanged   = "email_changed"
	MailInvitation     = "invitation"
	MailUsernameTaken  = "username_taken"
	MailFactorAdded    = "mfa_factor_added"
	MailFactorRemoved  = "mfa_factor_removed"
	MailFactorReset    = "mfa_factor_reset"
	MailAccountClaimed = "account_claimed"
)

// tenantName is how mails name the tenant: its display name, or its slug
// when it has none. The registry refuses display names with line breaks,
// direction overrides or nothing visible, but names stored before it did
// are still served: such a name is cleaned here, so that "Evil\u202Emoc.elgoog"
// cannot read "Evilgoogle.com" in a subject, and one that is still no valid
// name after cleaning (invisible only, say) gives way to the slug.
func tenantName(t tenancy.Tenant) string {
	name := strings.TrimSpace(tenantname.SanitizeDisplayText(t.DisplayName))
	if name == "" || tenantname.ValidateDisplayName("display_name", name) != nil {
		return t.Slug
	}
	return name
}

// dedupe makes one event produce one mail however often it is enqueued.
func dedupe(kind string, key []byte) string {
	return kind + ":" + hex.EncodeToString(key)
}

// letter is one mail to enqueue: the outbox's fields, and what it says,
// rendered in the language of the request that causes it with the
// tenant's branding when it is enqueued (enqueueMail).
type letter struct {
	kind, to, dedupeKey string
	emails.Letter
}

// enqueueMail renders l in the language of ctx's request (i18n.FromContext)
// with t's branding (its settings, read in tx) and writes it to the outbox
// in tx.
func enqueueMail(ctx context.Context, tx Tx, t tenancy.Tenant, l letter) error {
	settings, err := tx.Settings(ctx)
	if err != nil {
		return fmt.Errorf("read the branding for a mail: %w", err)
	}
	r, err := emails.Render(l.Letter, i18n.FromContext(ctx), BrandOf(t, settings))
	if err != nil {
		return err
	}
	return tx.Enqueue(ctx, mail.Message{Tenant: t.Slug, Kind: l.kind, To: l.to, DedupeKey: l.dedupeKey,
		Subject: r.Subject, Text: r.Text, HTML: r.HTML})
}

var say = emails.Say

func verificationMail(t tenancy.Tenant, links Links, to, secret string, hash []byte) letter {
	return letter{kind: MailVerification, to: to, dedupeKey: dedupe(MailVerification, hash), Letter: emails.Letter{
		Subject:    say("Confirm your email address for %s", emails.TenantName),
		Paragraphs: []emails.Text{say("Please confirm that %s is your email address for %s.", to, emails.TenantName)},
		Action:     &emails.Action{Label: say("Confirm my email address"), URL: links.URL(t, "/verify-email", secret)},
		After:      []emails.Text{say("If you did not ask for this, ignore this email.")},
	}}
}

func accountExistsMail(t tenancy.Tenant, links Links, u *User) letter {
	return accountExistsMailTo(t, links, u.Email)
}

func accountExistsMailTo(t tenancy.Tenant, links Links, to string) letter {
	return letter{kind: MailAccountExists, to: to, Letter: emails.Letter{
		Subject: say("Someone tried to use your email address at %s", emails.TenantName),
		Paragraphs: []emails.Text{
			say("Someone tried to sign up for %s (or to switch an account to this address) with %s, which already has an account.", emails.TenantName, to),
			say("If it was you, log in instead. Forgot your password? Reset it here:"),
		},
		Action: &emails.Action{Label: say("Reset my password"), URL: links.URL(t, "/forgot-password", "")},
		After:  []emails.Text{say("If it was not you, you can ignore this email.")},
	}}
}

func welcomeMail(t tenancy.Tenant, u *User) letter {
	return letter{kind: MailWelcome, to: u.Email, dedupeKey: dedupe(MailWelcome, []byte(u.ID)), Letter: emails.Letter{
		Subject:    say("Welcome to %s", emails.TenantName),
		Paragraphs: []emails.Text{say("Your account at %s is ready.", emails.TenantName)},
	}}
}

func resetMail(t tenancy.Tenant, links Links, to, secret string, hash []byte, ttl time.Duration) letter {
	return letter{kind: MailReset, to: to, dedupeKey: dedupe(MailReset, hash), Letter: emails.Letter{
		Subject: say("Reset your password for %s", emails.TenantName),
		Paragraphs: []emails.Text{say("Someone asked to reset the password of your account at %s. To choose a new password, open this link within %d minutes:",
			emails.TenantName, int(ttl/time.Minute))},
		Action: &emails.Action{Label: say("Choose a new password"), URL: links.URL(t, "/reset-password", secret)},
		After:  []emails.Text{say("If you did not ask for this, ignore this email: your password stays as it is.")},
	}}
}

func unknownAccountMail(t tenancy.Tenant, links Links, to string) letter {
	return letter{kind: MailUnknownAccount, to: to, Letter: emails.Letter{
		Subject: say("Password reset at %s", emails.TenantName),
		Paragraphs: []emails.Text{
			say("Someone asked to reset the password of an account at %s with this address, but there is no account for %s.", emails.TenantName, to),
			say("If it was you, you may have signed up with another address, or you can create an account here:"),
		},
		Action: &emails.Action{Label: say("Create an account"), URL: links.URL(t, "/signup", "")},
		After:  []emails.Text{say("If it was not you, ignore this email.")},
	}}
}

func passwordChangedMail(t tenancy.Tenant, to string, key []byte) letter {
	return letter{kind: MailPasswordChange, to: to, dedupeKey: dedupe(MailPasswordChange, key), Letter: emails.Letter{
		Subject:    say("Your password at %s was changed", emails.TenantName),
		Paragraphs: []emails.Text{say("The password of your account at %s was just changed and your other sessions were logged out.", emails.TenantName)},
		After:      []emails.Text{say("If it was not you, reset your password at once and contact an administrator.")},
	}}
}

func emailChangedMail(t tenancy.Tenant, oldEmail, newEmail string, key []byte) letter {
	return letter{kind: MailEmailChanged, to: oldEmail, dedupeKey: dedupe(MailEmailChanged, key), Letter: emails.Letter{
		Subject:    say("Your email address at %s was changed", emails.TenantName),
		Paragraphs: []emails.Text{say("The email address of your account at %s was changed from %s to %s.", emails.TenantName, oldEmail, newEmail)},
		After:      []emails.Text{say("If it was not you, contact an administrator at once.")},
	}}
}

func invitationMail(t tenancy.Tenant, links Links, to, secret string, hash []byte) letter {
	return letter{kind: MailInvitation, to: to, dedupeKey: dedupe(MailInvitation, hash), Letter: emails.Letter{
		Subject:    say("You are invited to %s", emails.TenantName),
		Paragraphs: []emails.Text{say("You have been invited to %s. To accept and choose your password, open this link:", emails.TenantName)},
		Action:     &emails.Action{Label: say("Accept the invitation"), URL: links.URL(t, "/accept-invitation", secret)},
	}}
}

// usernameTakenMail tells the person signing up with to that the username
// they chose is taken. It goes by email, not in the answer, because
// usernames are login identifiers: only the owner of the address learns
// that another account has the username (django-allauth's rule).
func usernameTakenMail(t tenancy.Tenant, links Links, to, username string) letter {
	return letter{kind: MailUsernameTaken, to: to, Letter: emails.Letter{
		Subject: say("Choose another username for %s", emails.TenantName),
		Paragraphs: []emails.Text{
			say("Someone (we hope you) tried to sign up for %s with this address and the username %q, which another account already has. No account was created.", emails.TenantName, username),
			say("To sign up, choose another username, or none:"),
		},
		Action: &emails.Action{Label: say("Sign up"), URL: links.URL(t, "/signup", "")},
		After:  []emails.Text{say("If it was not you, you can ignore this email.")},
	}}
}

func factorAddedMail(t tenancy.Tenant, to string, key []byte) letter {
	return letter{kind: MailFactorAdded, to: to, dedupeKey: dedupe(MailFactorAdded, key), Letter: emails.Letter{
		Subject: say("An authenticator app was added to your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("An authenticator app was just added to your account at %s: from now on, logging in asks for one of its codes after your password.",
			emails.TenantName)},
		After: []emails.Text{say("If it was not you, someone has your password: reset it at once and contact an administrator.")},
	}}
}

func factorRemovedMail(t tenancy.Tenant, to string, key []byte) letter {
	return letter{kind: MailFactorRemoved, to: to, dedupeKey: dedupe(MailFactorRemoved, key), Letter: emails.Letter{
		Subject: say("The authenticator app was removed from your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("The authenticator app of your account at %s was just removed, with its recovery codes: logging in asks for your password only.",
			emails.TenantName)},
		After: []emails.Text{say("If it was not you, reset your password at once and contact an administrator.")},
	}}
}

func factorResetMail(t tenancy.Tenant, to string, key []byte) letter {
	return letter{kind: MailFactorReset, to: to, dedupeKey: dedupe(MailFactorReset, key), Letter: emails.Letter{
		// ResetUserMFA removes every factor, not only the app: the mail says
		// so, or a user would expect their passkeys to still work.
		Subject: say("An administrator reset the second factors of your account at %s", emails.TenantName),
		Paragraphs: []emails.Text{say("An administrator of %s removed the second factors of your account: its authenticator app, its recovery codes and its passkeys, "+
			"and forgot the devices it was remembered on. You can add new ones from your account page (your organisation may ask you to at your next login).", emails.TenantName)},
		After: []emails.Text{say("If you did not ask for this, contact an administrator at once.")},
	}}
}

func loginCodeMail(t tenancy.Tenant, to, code string, key []byte) letter {
	return letter{kind: MailLoginCode, to: to, dedupeKey: dedupe(MailLoginCode, key), Letter: emails.Letter{
		Subject:    say("Your login code for %s: %s", emails.TenantName, code),
		Paragraphs: []emails.Text{say("Your code to log in to %s is:", emails.TenantName)},
		Code:       code,
		After: []emails.Text{
			say("It works once, in the next %d minutes, in the browser or app that asked for it.", int(LoginCodeTTL/time.Minute)),
			say("If you did not ask for it, ignore this email: nobody can log in with it without that browser."),
		},
	}}
}

// accountClaimedMail tells the owner of an address, just proven, what the
// proof took from the account set up with it before (claimAccount), and
// how to set a password again.
func accountClaimedMail(t tenancy.Tenant, links Links, to string, key []byte) letter {
	return letter{kind: MailAccountClaimed, to: to, dedupeKey: dedupe(MailAccountClaimed, key), Letter: emails.Letter{
		Subject: say("Your account at %s is yours alone now", emails.TenantName),
		Paragraphs: []emails.Text{
			say("You just proved that this address is yours by logging in to %s with a code sent to it. The account had been set up with this address before, and whoever set it up could have kept a way in.", emails.TenantName),
			say("So that only you can use it, its other sessions were logged out, and its password, second factors, passkeys, other email addresses and other ways to log in were removed."),
			say("To log in with a password again, set one:"),
		},
		Action: &emails.Action{Label: say("Set a password"), URL: links.URL(t, "/forgot-password", "")},
		After:  []emails.Text{say("If you set the account up yourself, nothing is wrong: set your password again, and your second factors if you had any.")},
	}}
}

// mailMessage is the outbox's message, named for the mails of other files.
type mailMessage = mail.Message
