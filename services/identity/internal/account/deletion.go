package account

import (
	"context"
	"time"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Account deletion by its owner: a request (after a recent proof) marks
// the account for deletion at the end of the tenant's grace period and
// mails the owner; a login before then cancels it (RecordLogin), and so
// does CancelDeletion; Sweep deletes the accounts whose time has come, as
// an admin's DeleteUser would (audited user.deleted, hence the account
// event).

// HighestDeletionGraceDays bounds Settings.DeletionGraceDays.
const HighestDeletionGraceDays = 90

// Audit events of a deletion's request and cancellation.
const (
	EventDeletionRequested = "user.deletion_requested"
	EventDeletionCancelled = "user.deletion_cancelled"
)

// MailDeletionRequested is the mail confirming a deletion's request.
const MailDeletionRequested = "deletion_requested"

// deletionsPerSweep bounds the accounts one Sweep deletes in a tenant;
// the next sweep takes the rest.
const deletionsPerSweep = 100

// RequestDeletion marks c's own account for deletion at the end of t's
// grace period and returns when. The session must have proved the user
// recently (a sensitive action).
func (m *Manager) RequestDeletion(ctx context.Context, t tenancy.Tenant, c Client) (time.Time, error) {
	if c.UserID == "" {
		return time.Time{}, fault.New(fault.PermissionDenied, "USER_REQUIRED", "only a signed-in user can delete their account")
	}
	var at time.Time
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.requireRecentProof(ctx, tx, c.UserID, c.SessionID, false); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, c.UserID, true)
		if err != nil {
			return err
		}
		settings, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		at = m.now().Add(time.Duration(settings.DeletionGraceDays) * 24 * time.Hour).Truncate(time.Second)
		if err := tx.ScheduleDeletion(ctx, u.ID, &at); err != nil {
			return err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventDeletionRequested, UserID: u.ID, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"delete_time": at}}); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, t, deletionRequestedMail(t, u.Email, at, settings.DeletionGraceDays))
	})
	if err != nil {
		return time.Time{}, internal(err, "request deletion")
	}
	return at, nil
}

// CancelDeletion keeps c's own account after all.
func (m *Manager) CancelDeletion(ctx context.Context, t tenancy.Tenant, c Client) error {
	if c.UserID == "" {
		return fault.New(fault.PermissionDenied, "USER_REQUIRED", "only a signed-in user can cancel their account's deletion")
	}
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		at, err := tx.DeletionTime(ctx, c.UserID)
		if err != nil || at.IsZero() {
			return err
		}
		if err := tx.ScheduleDeletion(ctx, c.UserID, nil); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventDeletionCancelled, UserID: c.UserID, Actor: c.Actor, ClientIP: c.IP})
	})
	return internal(err, "cancel deletion")
}

// DeletionTime is when c's own account is to be deleted; zero when it is
// not.
func (m *Manager) DeletionTime(ctx context.Context, t tenancy.Tenant, c Client) (time.Time, error) {
	var at time.Time
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		at, err = tx.DeletionTime(ctx, c.UserID)
		return err
	})
	return at, internal(err, "read deletion time")
}

// deleteDue deletes, in tx, the accounts whose deletion time has come.
func (m *Manager) deleteDue(ctx context.Context, tx Tx) (int64, error) {
	ids, err := tx.UsersDueForDeletion(ctx, m.now(), deletionsPerSweep)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := tx.DeleteUser(ctx, id); err != nil {
			return 0, err
		}
		if err := tx.Audit(ctx, AuditEvent{Event: EventUserDeleted, UserID: id, Actor: "deletion requested by the user",
			Details: map[string]any{"reason": "owner_request"}}); err != nil {
			return 0, err
		}
	}
	return int64(len(ids)), nil
}

func deletionRequestedMail(t tenancy.Tenant, to string, at time.Time, days int) letter {
	return letter{kind: MailDeletionRequested, to: to, dedupeKey: dedupe(MailDeletionRequested, []byte(to+at.String())), Letter: emails.Letter{
		Subject:    say("Your account at %s will be deleted", emails.TenantName),
		Paragraphs: []emails.Text{say("You asked to delete your account at %s. It will be deleted in %d days, on %s (UTC).", emails.TenantName, days, at.UTC().Format("2006-01-02 15:04"))},
		After: []emails.Text{
			say("To keep your account, log in before then, or cancel the deletion on your account page."),
			say("If you did not ask for this, log in at once and change your password."),
		},
	}}
}
