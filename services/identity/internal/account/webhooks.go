package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// WebhookEndpoint is where a tenant's account events are POSTed.
type WebhookEndpoint struct {
	ID         string
	URL        string
	EventTypes []AccountEventType // empty: every type
	Enabled    bool
	// SecretSealed is the signing secret sealed with Config.WebhookSecrets
	// under WebhookSecretAD.
	SecretSealed    []byte
	CreateTime      time.Time
	UpdateTime      time.Time
	LastFailureTime time.Time
	LastFailure     string
}

// WebhookDelivery is one event's delivery to one endpoint.
type WebhookDelivery struct {
	EndpointID      string
	Revision        int64
	EventType       AccountEventType
	UserID          string
	State           string // pending, delivered, abandoned
	Attempts        int
	LastError       string
	NextAttemptTime time.Time
	DeliveredTime   time.Time
}

// WebhookTx is what a Tx does with webhook endpoints.
type WebhookTx interface {
	InsertWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	WebhookEndpoint(ctx context.Context, id string, forUpdate bool) (*WebhookEndpoint, error)
	WebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error)
	// UpdateWebhookEndpoint stores url, types, enabled and the sealed
	// secret of e.
	UpdateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// WebhookDeliveries returns up to limit deliveries to the endpoint of
	// events before revision before (0: the newest), newest first.
	WebhookDeliveries(ctx context.Context, endpointID string, before int64, limit int) ([]WebhookDelivery, error)
}

// WebhookSecretAD is the associated data an endpoint's secret is sealed
// under: a sealed secret copied to another endpoint or tenant does not
// open there.
func WebhookSecretAD(tenantUID, endpointID string) []byte {
	return []byte("webhook endpoint secret\x00" + tenantUID + "\x00" + endpointID)
}

// Audit events of webhook configuration.
const (
	EventWebhookEndpointCreated       = "webhook_endpoint.created"
	EventWebhookEndpointUpdated       = "webhook_endpoint.updated"
	EventWebhookEndpointDeleted       = "webhook_endpoint.deleted"
	EventWebhookEndpointSecretRotated = "webhook_endpoint.secret_rotated"
)

// maxWebhookEndpoints bounds a tenant's endpoints: each event is queued
// for every one of them in the change's transaction.
const maxWebhookEndpoints = 20

func errWebhookEndpointNotFound(id string) error {
	return fault.New(fault.NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND", "webhook endpoint %q not found", id)
}

// newWebhookSecret returns a Standard Webhooks secret: "whsec_" and the
// base64 of 32 random bytes (the HMAC-SHA256 key).
func newWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// checkWebhookEndpoint validates an endpoint's URL and filter. The URL's
// host is resolved by Config.CheckWebhookURL (refusing private addresses),
// which the delivery checks again when it connects.
func (m *Manager) checkWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error {
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fault.Invalid("webhook_endpoint.url", "WEBHOOK_URL_INVALID",
			"url must be an absolute http or https URL without user info or fragment")
	}
	if len(e.URL) > 2000 {
		return fault.Invalid("webhook_endpoint.url", "WEBHOOK_URL_INVALID", "url is longer than 2000 characters")
	}
	if m.cfg.CheckWebhookURL != nil {
		if err := m.cfg.CheckWebhookURL(ctx, u); err != nil {
			// The host as given, never what it resolved to (nor the
			// resolver's error): an admin must not learn through this
			// what internal names resolve to, or which exist.
			m.cfg.Logger.DebugContext(ctx, "webhook URL refused", "host", u.Hostname(), "err", err)
			return fault.Invalid("webhook_endpoint.url", "WEBHOOK_URL_FORBIDDEN",
				"url is refused: %s does not resolve, or resolves to a loopback, private, link-local or otherwise non-public address", u.Hostname())
		}
	}
	for _, typ := range e.EventTypes {
		if !slices.Contains(AccountEventTypes, typ) {
			return fault.Invalid("webhook_endpoint.event_types", "WEBHOOK_EVENT_TYPE_UNKNOWN",
				"event type %q is unknown; the types are user.created, user.verified, user.updated, user.disabled, user.deleted, user.logged_in, user.factor_changed", typ)
		}
	}
	return nil
}

func (m *Manager) sealWebhookSecret(t tenancy.Tenant, id, secret string) ([]byte, error) {
	if m.cfg.WebhookSecrets == nil {
		return nil, fault.New(fault.FailedPrecondition, "WEBHOOKS_UNAVAILABLE", "webhooks are not configured on this service")
	}
	return m.cfg.WebhookSecrets.Seal([]byte(secret), WebhookSecretAD(t.UID, id)), nil
}

// CreateWebhookEndpoint adds an endpoint to t and returns it with its
// secret, which is not shown again.
func (m *Manager) CreateWebhookEndpoint(ctx context.Context, t tenancy.Tenant, e WebhookEndpoint, c Client) (*WebhookEndpoint, string, error) {
	if err := m.checkWebhookEndpoint(ctx, &e); err != nil {
		return nil, "", err
	}
	e.ID = newID()
	secret := newWebhookSecret()
	sealed, err := m.sealWebhookSecret(t, e.ID, secret)
	if err != nil {
		return nil, "", err
	}
	e.SecretSealed = sealed
	now := m.now()
	e.CreateTime, e.UpdateTime = now, now
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		existing, err := tx.WebhookEndpoints(ctx)
		if err != nil {
			return err
		}
		if len(existing) >= maxWebhookEndpoints {
			return fault.New(fault.FailedPrecondition, "WEBHOOK_ENDPOINTS_LIMIT", "a tenant has at most %d webhook endpoints", maxWebhookEndpoints)
		}
		if err := tx.InsertWebhookEndpoint(ctx, &e); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventWebhookEndpointCreated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"endpoint": e.ID, "url": e.URL}})
	})
	if err != nil {
		return nil, "", internal(err, "create webhook endpoint")
	}
	m.cfg.OnWebhookEndpointChanged(t)
	return &e, secret, nil
}

// WebhookEndpoints lists t's endpoints, oldest first.
func (m *Manager) WebhookEndpoints(ctx context.Context, t tenancy.Tenant) ([]*WebhookEndpoint, error) {
	var list []*WebhookEndpoint
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		list, err = tx.WebhookEndpoints(ctx)
		return err
	})
	return list, internal(err, "list webhook endpoints")
}

// WebhookEndpointUpdate says what UpdateWebhookEndpoint changes; nil
// fields stay.
type WebhookEndpointUpdate struct {
	URL        *string
	EventTypes *[]AccountEventType
	Enabled    *bool
}

// UpdateWebhookEndpoint changes an endpoint of t.
func (m *Manager) UpdateWebhookEndpoint(ctx context.Context, t tenancy.Tenant, id string, up WebhookEndpointUpdate, c Client) (*WebhookEndpoint, error) {
	var out *WebhookEndpoint
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		e, err := tx.WebhookEndpoint(ctx, id, true)
		if errors.Is(err, ErrNotFound) {
			return errWebhookEndpointNotFound(id)
		} else if err != nil {
			return err
		}
		if up.URL != nil {
			e.URL = strings.TrimSpace(*up.URL)
		}
		if up.EventTypes != nil {
			e.EventTypes = *up.EventTypes
		}
		if up.Enabled != nil {
			e.Enabled = *up.Enabled
		}
		if err := m.checkWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		e.UpdateTime = m.now()
		if err := tx.UpdateWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		out = e
		return tx.Audit(ctx, AuditEvent{Event: EventWebhookEndpointUpdated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"endpoint": e.ID, "url": e.URL, "enabled": e.Enabled}})
	})
	if err != nil {
		return nil, internal(err, "update webhook endpoint")
	}
	m.cfg.OnWebhookEndpointChanged(t)
	return out, nil
}

// DeleteWebhookEndpoint removes an endpoint of t and its deliveries.
func (m *Manager) DeleteWebhookEndpoint(ctx context.Context, t tenancy.Tenant, id string, c Client) error {
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		if _, err := tx.WebhookEndpoint(ctx, id, true); errors.Is(err, ErrNotFound) {
			return errWebhookEndpointNotFound(id)
		} else if err != nil {
			return err
		}
		if err := tx.DeleteWebhookEndpoint(ctx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventWebhookEndpointDeleted, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"endpoint": id}})
	})
	return internal(err, "delete webhook endpoint")
}

// RotateWebhookSecret gives an endpoint of t a new secret and returns it.
// Deliveries attempted from the commit on are signed with it.
func (m *Manager) RotateWebhookSecret(ctx context.Context, t tenancy.Tenant, id string, c Client) (string, error) {
	secret := newWebhookSecret()
	sealed, err := m.sealWebhookSecret(t, id, secret)
	if err != nil {
		return "", err
	}
	err = m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if err := m.actingAdmin(ctx, tx, c); err != nil {
			return err
		}
		e, err := tx.WebhookEndpoint(ctx, id, true)
		if errors.Is(err, ErrNotFound) {
			return errWebhookEndpointNotFound(id)
		} else if err != nil {
			return err
		}
		e.SecretSealed = sealed
		e.UpdateTime = m.now()
		if err := tx.UpdateWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Event: EventWebhookEndpointSecretRotated, Actor: c.Actor, ClientIP: c.IP,
			Details: map[string]any{"endpoint": id}})
	})
	if err != nil {
		return "", internal(err, "rotate webhook secret")
	}
	return secret, nil
}

// WebhookDeliveries returns up to limit deliveries to an endpoint of t
// before revision before (0: newest), newest first, and whether there are
// more.
func (m *Manager) WebhookDeliveries(ctx context.Context, t tenancy.Tenant, id string, before int64, limit int) ([]WebhookDelivery, bool, error) {
	var list []WebhookDelivery
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		if _, err := tx.WebhookEndpoint(ctx, id, false); errors.Is(err, ErrNotFound) {
			return errWebhookEndpointNotFound(id)
		} else if err != nil {
			return err
		}
		var err error
		list, err = tx.WebhookDeliveries(ctx, id, before, limit+1)
		return err
	})
	if err != nil {
		return nil, false, internal(err, "list webhook deliveries")
	}
	more := len(list) > limit
	if more {
		list = list[:limit]
	}
	return list, more, nil
}
