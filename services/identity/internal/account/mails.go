package account

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

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

func verificationMail(t tenancy.Tenant, links Links, to, secret string, hash []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailVerification, To: to, DedupeKey: dedupe(MailVerification, hash),
		Subject: fmt.Sprintf("Confirm your email address for %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nplease confirm that %s is your email address for %s by opening this link:\n\n%s\n\n"+
			"If you did not ask for this, ignore this email.\n", to, tenantName(t), links.URL(t, "/verify-email", secret)),
	}
}

func accountExistsMail(t tenancy.Tenant, links Links, u *User) mail.Message {
	return accountExistsMailTo(t, links, u.Email)
}

func accountExistsMailTo(t tenancy.Tenant, links Links, to string) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailAccountExists, To: to,
		Subject: fmt.Sprintf("Someone tried to use your email address at %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nsomeone tried to sign up for %s (or to switch an account to this address) with %s, "+
			"which already has an account.\n\nIf it was you, log in instead. Forgot your password? Reset it here:\n\n%s\n\n"+
			"If it was not you, you can ignore this email.\n", tenantName(t), to, links.URL(t, "/forgot-password", "")),
	}
}

func welcomeMail(t tenancy.Tenant, u *User) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailWelcome, To: u.Email, DedupeKey: dedupe(MailWelcome, []byte(u.ID)),
		Subject: fmt.Sprintf("Welcome to %s", tenantName(t)),
		Text:    fmt.Sprintf("Hello,\n\nyour account at %s is ready.\n", tenantName(t)),
	}
}

func resetMail(t tenancy.Tenant, links Links, to, secret string, hash []byte, ttl time.Duration) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailReset, To: to, DedupeKey: dedupe(MailReset, hash),
		Subject: fmt.Sprintf("Reset your password for %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nsomeone asked to reset the password of your account at %s. To choose a new password, open this link within %s:\n\n%s\n\n"+
			"If you did not ask for this, ignore this email: your password stays as it is.\n", tenantName(t), ttl, links.URL(t, "/reset-password", secret)),
	}
}

func unknownAccountMail(t tenancy.Tenant, links Links, to string) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailUnknownAccount, To: to,
		Subject: fmt.Sprintf("Password reset at %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nsomeone asked to reset the password of an account at %s with this address, but there is no account for %s.\n\n"+
			"If it was you, you may have signed up with another address, or you can create an account here:\n\n%s\n\n"+
			"If it was not you, ignore this email.\n", tenantName(t), to, links.URL(t, "/signup", "")),
	}
}

func passwordChangedMail(t tenancy.Tenant, to string, key []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailPasswordChange, To: to, DedupeKey: dedupe(MailPasswordChange, key),
		Subject: fmt.Sprintf("Your password at %s was changed", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nthe password of your account at %s was just changed and your other sessions were logged out.\n\n"+
			"If it was not you, reset your password at once and contact an administrator.\n", tenantName(t)),
	}
}

func emailChangedMail(t tenancy.Tenant, oldEmail, newEmail string, key []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailEmailChanged, To: oldEmail, DedupeKey: dedupe(MailEmailChanged, key),
		Subject: fmt.Sprintf("Your email address at %s was changed", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nthe email address of your account at %s was changed from %s to %s.\n\n"+
			"If it was not you, contact an administrator at once.\n", tenantName(t), oldEmail, newEmail),
	}
}

func invitationMail(t tenancy.Tenant, links Links, to, secret string, hash []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailInvitation, To: to, DedupeKey: dedupe(MailInvitation, hash),
		Subject: fmt.Sprintf("You are invited to %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nyou have been invited to %s. To accept and choose your password, open this link:\n\n%s\n",
			tenantName(t), links.URL(t, "/accept-invitation", secret)),
	}
}

// usernameTakenMail tells the person signing up with to that the username
// they chose is taken. It goes by email, not in the answer, because
// usernames are login identifiers: only the owner of the address learns
// that another account has the username (django-allauth's rule).
func usernameTakenMail(t tenancy.Tenant, links Links, to, username string) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailUsernameTaken, To: to,
		Subject: fmt.Sprintf("Choose another username for %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nsomeone (we hope you) tried to sign up for %s with this address and the username %q, "+
			"which another account already has. No account was created.\n\nTo sign up, choose another username, or none:\n\n%s\n\n"+
			"If it was not you, you can ignore this email.\n", tenantName(t), username, links.URL(t, "/signup", "")),
	}
}

func factorAddedMail(t tenancy.Tenant, to string, key []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailFactorAdded, To: to, DedupeKey: dedupe(MailFactorAdded, key),
		Subject: fmt.Sprintf("An authenticator app was added to your account at %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nan authenticator app was just added to your account at %s: from now on, logging in "+
			"asks for one of its codes after your password.\n\n"+
			"If it was not you, someone has your password: reset it at once and contact an administrator.\n", tenantName(t)),
	}
}

func factorRemovedMail(t tenancy.Tenant, to string, key []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailFactorRemoved, To: to, DedupeKey: dedupe(MailFactorRemoved, key),
		Subject: fmt.Sprintf("The authenticator app was removed from your account at %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nthe authenticator app of your account at %s was just removed, with its recovery codes: "+
			"logging in asks for your password only.\n\n"+
			"If it was not you, reset your password at once and contact an administrator.\n", tenantName(t)),
	}
}

func factorResetMail(t tenancy.Tenant, to string, key []byte) mail.Message {
	return mail.Message{
		Tenant: t.Slug, Kind: MailFactorReset, To: to, DedupeKey: dedupe(MailFactorReset, key),
		Subject: fmt.Sprintf("An administrator removed the authenticator app of your account at %s", tenantName(t)),
		Text: fmt.Sprintf("Hello,\n\nan administrator of %s removed the authenticator app of your account, with its recovery codes. "+
			"You can add a new one from your account page (your organisation may ask you to at your next login).\n\n"+
			"If you did not ask for this, contact an administrator at once.\n", tenantName(t)),
	}
}

// mailMessage is the outbox's message, named for the mails of other files.
type mailMessage = mail.Message
