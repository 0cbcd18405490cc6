package tenant

// SetCrashPoints installs functions that run between the provisioning
// steps, so tests can stop a create half-way as a crash would.
func SetCrashPoints(m *Manager, afterRecord, afterSchema func() error) {
	m.afterRecord, m.afterSchema = afterRecord, afterSchema
}
