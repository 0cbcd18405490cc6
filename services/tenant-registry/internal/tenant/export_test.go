package tenant

import "context"

// SetCrashPoints installs functions that run between the provisioning
// steps, so tests can stop a create half-way as a crash would.
func SetCrashPoints(m *Manager, afterRecord, afterSchema func() error) {
	m.afterRecord, m.afterSchema = afterRecord, afterSchema
}

// PurgeTenant runs the purge a force delete and the reconciler share.
func PurgeTenant(m *Manager, t *Tenant) (*Tenant, error) { return m.purge(context.Background(), t) }
