package tenant

import (
	"strconv"
	"time"
)

// State is the lifecycle state of a tenant.
type State string

// The states a tenant goes through. Only Active tenants are served.
const (
	Provisioning State = "PROVISIONING"
	Active       State = "ACTIVE"
	Suspended    State = "SUSPENDED"
	Deleted      State = "DELETED"
)

// Domain is a custom host name attached to a tenant.
type Domain struct {
	Host    string `json:"host"`
	Primary bool   `json:"primary,omitempty"`
}

// Tenant is one customer with its own PostgreSQL schema. Values held by the
// Index are shared between goroutines and must be treated as immutable:
// change a Clone.
type Tenant struct {
	UID         string            `json:"uid"`
	Slug        string            `json:"slug"`
	DisplayName string            `json:"display_name,omitempty"`
	State       State             `json:"state"`
	Schema      string            `json:"schema"`
	Placement   string            `json:"placement"`
	Domains     []Domain          `json:"domains,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreateTime  time.Time         `json:"create_time"`
	UpdateTime  time.Time         `json:"update_time"`
	DeleteTime  time.Time         `json:"delete_time,omitzero"`
	PurgeTime   time.Time         `json:"purge_time,omitzero"`
	// Revision is the registry revision of the tenant's last change.
	Revision int64 `json:"revision"`
}

// Etag is the tenant's version for optimistic concurrency. It changes with
// every change of the tenant because every change takes a new revision.
func (t *Tenant) Etag() string {
	return `"` + strconv.FormatInt(t.Revision, 10) + `"`
}

// Clone returns a deep copy that can be changed without affecting t.
func (t *Tenant) Clone() *Tenant {
	c := *t
	if t.Domains != nil {
		c.Domains = append([]Domain(nil), t.Domains...)
	}
	if t.Labels != nil {
		c.Labels = make(map[string]string, len(t.Labels))
		for k, v := range t.Labels {
			c.Labels[k] = v
		}
	}
	return &c
}

// PrimaryDomain returns the tenant's primary custom domain, if it has one.
func (t *Tenant) PrimaryDomain() (string, bool) {
	for _, d := range t.Domains {
		if d.Primary {
			return d.Host, true
		}
	}
	return "", false
}

// EventKind says what an event did to a tenant.
type EventKind string

// The kinds of event. Upsert carries the tenant's new state; Purge says the
// tenant and its schema are gone.
const (
	Upsert EventKind = "UPSERT"
	Purge  EventKind = "PURGE"
)

// Event is one change in the registry's ordered change log.
type Event struct {
	Revision int64
	Kind     EventKind
	Tenant   *Tenant
}
