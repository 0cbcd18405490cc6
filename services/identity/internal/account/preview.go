package account

import (
	"context"
	"slices"
	"time"

	"golang.org/x/text/language"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// sampleMails are the mails a tenant admin can preview, by kind, each with
// sample data: an example address, a link whose token is not one, a code
// that logs nobody in.
var sampleMails = map[string]func(t tenancy.Tenant, links Links) letter{
	MailVerification:   func(t tenancy.Tenant, l Links) letter { return verificationMail(t, l, sampleTo, sampleToken, nil) },
	MailAccountExists:  func(t tenancy.Tenant, l Links) letter { return accountExistsMailTo(t, l, sampleTo) },
	MailWelcome:        func(t tenancy.Tenant, _ Links) letter { return welcomeMail(t, &User{Email: sampleTo}) },
	MailReset:          func(t tenancy.Tenant, l Links) letter { return resetMail(t, l, sampleTo, sampleToken, nil, time.Hour) },
	MailUnknownAccount: func(t tenancy.Tenant, l Links) letter { return unknownAccountMail(t, l, sampleTo) },
	MailPasswordChange: func(t tenancy.Tenant, _ Links) letter { return passwordChangedMail(t, sampleTo, nil) },
	MailEmailChanged: func(t tenancy.Tenant, _ Links) letter {
		return emailChangedMail(t, "old.address@example.com", sampleTo, nil)
	},
	MailInvitation:     func(t tenancy.Tenant, l Links) letter { return invitationMail(t, l, sampleTo, sampleToken, nil) },
	MailUsernameTaken:  func(t tenancy.Tenant, l Links) letter { return usernameTakenMail(t, l, sampleTo, "jane") },
	MailFactorAdded:    func(t tenancy.Tenant, _ Links) letter { return factorAddedMail(t, sampleTo, nil) },
	MailFactorRemoved:  func(t tenancy.Tenant, _ Links) letter { return factorRemovedMail(t, sampleTo, nil) },
	MailFactorReset:    func(t tenancy.Tenant, _ Links) letter { return factorResetMail(t, sampleTo, nil) },
	MailLoginCode:      func(t tenancy.Tenant, _ Links) letter { return loginCodeMail(t, sampleTo, "123456", nil) },
	MailAccountClaimed: func(t tenancy.Tenant, l Links) letter { return accountClaimedMail(t, l, sampleTo, nil) },
	MailPasskeyAdded:   func(t tenancy.Tenant, _ Links) letter { return passkeyAddedMail(t, sampleTo, "Laptop", nil) },
	MailPasskeyRemoved: func(t tenancy.Tenant, _ Links) letter { return passkeyRemovedMail(t, sampleTo, "Laptop", nil) },
	MailIdentityLinked: func(t tenancy.Tenant, _ Links) letter {
		return identityLinkedMail(t, sampleTo, "Example SSO", "jane@sso.example.com", nil)
	},
	MailIdentityUnlinked: func(t tenancy.Tenant, _ Links) letter { return identityUnlinkedMail(t, sampleTo, "Example SSO", nil) },
	MailDeletionRequested: func(t tenancy.Tenant, _ Links) letter {
		return deletionRequestedMail(t, sampleTo, time.Date(2030, 1, 15, 9, 30, 0, 0, time.UTC), 14)
	},
}

const (
	sampleTo    = "jane.doe@example.com"
	sampleToken = "sample-token-not-valid"
)

// MailKinds are the kinds of mail PreviewMail renders, sorted.
func MailKinds() []string {
	kinds := make([]string, 0, len(sampleMails))
	for k := range sampleMails {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// PreviewMail renders the mail of kind in lang with sample data and t's
// current branding, as a tenant admin (c) previews it before users get it.
func (m *Manager) PreviewMail(ctx context.Context, t tenancy.Tenant, c Client, kind string, lang language.Tag) (emails.Rendered, error) {
	sample, ok := sampleMails[kind]
	if !ok {
		return emails.Rendered{}, fault.Invalid("kind", "EMAIL_KIND_UNKNOWN", "kind must be one of the kinds ListEmailKinds lists")
	}
	var settings Settings
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		var err error
		settings, err = tx.Settings(ctx)
		return err
	})
	if err != nil {
		return emails.Rendered{}, internal(err, "preview a mail")
	}
	r, err := emails.Render(sample(t, m.links).Letter, lang, BrandOf(t, settings))
	return r, internal(err, "preview a mail")
}
