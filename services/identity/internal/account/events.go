package account

import (
	"context"
	"fmt"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// AccountEventType is what an account event says happened. The values are
// those product services see (WatchAccountEvents, webhooks).
type AccountEventType string

// The account event types.
const (
	AccountUserCreated   AccountEventType = "user.created"
	AccountUserVerified  AccountEventType = "user.verified"
	AccountUserUpdated   AccountEventType = "user.updated"
	AccountUserDisabled  AccountEventType = "user.disabled"
	AccountUserDeleted   AccountEventType = "user.deleted"
	AccountUserLoggedIn  AccountEventType = "user.logged_in"
	AccountFactorChanged AccountEventType = "user.factor_changed"
)

// AccountEventTypes lists every type, for validating filters.
var AccountEventTypes = []AccountEventType{
	AccountUserCreated, AccountUserVerified, AccountUserUpdated, AccountUserDisabled,
	AccountUserDeleted, AccountUserLoggedIn, AccountFactorChanged,
}

// auditToAccountEvent says which audit events are also account events.
// Every change the rules make is audited in its own transaction, so
// deriving the account events from the audit events (Tx.Audit records
// both) covers every path that changes an account, including those added
// later that audit with a name listed here, and writes each event in the
// transaction of its change. Failures (login_failed, ...) are audited in
// transactions of their own and are not account events.
var auditToAccountEvent = map[string]AccountEventType{
	EventSignUp:                    AccountUserCreated,
	EventUserInvited:               AccountUserCreated,
	EventFederatedSignUp:           AccountUserCreated,
	EventEmailVerified:             AccountUserVerified,
	EventInvitationAccepted:        AccountUserVerified,
	EventUserUpdated:               AccountUserUpdated,
	EventEmailChanged:              AccountUserUpdated,
	EventEmailAddressAdded:         AccountUserUpdated,
	EventEmailAddressVerified:      AccountUserUpdated,
	EventEmailAddressRemoved:       AccountUserUpdated,
	EventPrimaryEmailChanged:       AccountUserUpdated,
	EventPasswordChanged:           AccountUserUpdated,
	EventPasswordReset:             AccountUserUpdated,
	EventUserDeleted:               AccountUserDeleted,
	EventLogin:                     AccountUserLoggedIn,
	EventFederatedLogin:            AccountUserLoggedIn,
	EventMFATOTPEnrolled:           AccountFactorChanged,
	EventMFATOTPRemoved:            AccountFactorChanged,
	EventMFARecoveryCodesGenerated: AccountFactorChanged,
	EventMFAResetByAdmin:           AccountFactorChanged,
	EventIdentityLinked:            AccountFactorChanged,
	EventIdentityUnlinked:          AccountFactorChanged,
	EventAccountClaimed:            AccountFactorChanged,
}

// AccountEventOf returns the account event an audit event causes, if any
// (Tx implementations call it from Audit).
func AccountEventOf(auditEvent string) (AccountEventType, bool) {
	t, ok := auditToAccountEvent[auditEvent]
	return t, ok
}

// AccountEvent is one recorded account event.
type AccountEvent struct {
	// Revision is the tenant's number of the event: 1, 2, 3, ... in
	// commit order.
	Revision   int64
	Type       AccountEventType
	UserID     string
	CreateTime time.Time
	// Data is the user as the change left it, without secrets, and the
	// audit event that caused it.
	Data map[string]any
}

// AccountEventTx is what a Tx does with account events, webhook endpoints
// and the audit log.
type AccountEventTx interface {
	// RecordAccountEvent writes an event of typ about userID, with the
	// user's current state as its data, takes the tenant's next revision
	// and queues the event's webhook deliveries, all in this transaction.
	// cause names the audit event behind it ("" when none).
	RecordAccountEvent(ctx context.Context, typ AccountEventType, userID, cause string) error
	// AccountEvents returns up to limit events after revision after, in
	// order.
	AccountEvents(ctx context.Context, after int64, limit int) ([]AccountEvent, error)
	// AccountEventBounds returns the oldest revision still kept (0 when
	// none is) and the last revision given out.
	AccountEventBounds(ctx context.Context) (oldest, last int64, err error)
	// AuditEvents returns up to limit audit log entries matching q,
	// newest first.
	AuditEvents(ctx context.Context, q AuditQuery, limit int) ([]AuditRecord, error)

	WebhookTx
}

// RecordAccountEvent records an account event of typ about the user userID
// of tenant t in tx, the transaction of the change it describes: the event
// exists if and only if the change commits, and reaches watchers and
// webhooks after the commit. It is the one entry point for changes that
// are not audited under a name AccountEventOf knows (e.g. passkeys added
// or removed: AccountFactorChanged).
func RecordAccountEvent(ctx context.Context, tx Tx, t tenancy.Tenant, userID string, typ AccountEventType) error {
	if err := tx.RecordAccountEvent(ctx, typ, userID, ""); err != nil {
		return fmt.Errorf("record %s event of a user of tenant %q: %w", typ, t.Slug, err)
	}
	return nil
}

// Reasons of account event faults.
const (
	// ReasonStartRevisionCompacted: events after the start revision were
	// deleted (retention); resume from 0 or from oldest_revision - 1.
	ReasonStartRevisionCompacted = "START_REVISION_COMPACTED"
	// ReasonStartRevisionInvalid: negative, or ahead of the tenant's last.
	ReasonStartRevisionInvalid = "START_REVISION_INVALID"
)

// AccountEventsPage is a page of account events.
type AccountEventsPage struct {
	Events []AccountEvent
	// Last is the tenant's last revision when the page was read.
	Last int64
}

// AccountEvents returns up to limit of t's events after revision after. A
// revision whose successors were deleted is refused with
// ReasonStartRevisionCompacted, one ahead of the tenant's last with
// ReasonStartRevisionInvalid, so a watcher never skips events silently.
func (m *Manager) AccountEvents(ctx context.Context, t tenancy.Tenant, after int64, limit int) (AccountEventsPage, error) {
	if after < 0 {
		return AccountEventsPage{}, fault.Invalid("start_revision", ReasonStartRevisionInvalid, "start_revision must be 0 or a revision seen before")
	}
	var page AccountEventsPage
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		oldest, last, err := tx.AccountEventBounds(ctx)
		if err != nil {
			return err
		}
		if after > last {
			return fault.Invalid("start_revision", ReasonStartRevisionInvalid,
				"start_revision %d is ahead of the tenant's last account event, %d", after, last)
		}
		// Events after `after` are gone when the oldest kept is past
		// after+1; with none kept, everything up to last is gone. 0 asks
		// for whatever is kept.
		if after > 0 && ((oldest > 0 && oldest > after+1) || (oldest == 0 && after < last)) {
			kept := oldest
			if kept == 0 {
				kept = last + 1
			}
			return fault.New(fault.FailedPrecondition, ReasonStartRevisionCompacted,
				"the account events after revision %d are no longer kept; the oldest kept is %d: resume from %d (or start a new sync)", after, kept, kept-1).
				WithMetadata("oldest_revision", fmt.Sprint(kept))
		}
		page.Last = last
		page.Events, err = tx.AccountEvents(ctx, after, limit)
		return err
	})
	return page, internal(err, "read account events")
}

// AuditQuery selects audit log entries.
type AuditQuery struct {
	// BeforeID, when not zero, takes entries older than it (paging).
	BeforeID int64
	UserID   string
	Event    string
	// From and To bound the time: From <= time < To; zero is unbounded.
	From, To time.Time
}

// AuditRecord is one entry of the audit log as read back.
type AuditRecord struct {
	ID       int64
	Time     time.Time
	Event    string
	UserID   string
	Actor    string
	ClientIP string
	Details  map[string]any
}

// AuditEvents returns up to limit entries of t's audit log matching q,
// newest first, and whether there are more.
func (m *Manager) AuditEvents(ctx context.Context, t tenancy.Tenant, q AuditQuery, limit int) ([]AuditRecord, bool, error) {
	var recs []AuditRecord
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		recs, err = tx.AuditEvents(ctx, q, limit+1)
		return err
	})
	if err != nil {
		return nil, false, internal(err, "read the audit log")
	}
	more := len(recs) > limit
	if more {
		recs = recs[:limit]
	}
	return recs, more, nil
}
