package account

import (
	"context"
	"errors"
	"time"
)

// Remembered devices: after a second factor, a device may be remembered
// for the tenant's Settings.MFARememberDays (0: never), so that its next
// logins of the account need the password only. The device keeps a random
// 256-bit token; only its SHA-256 is stored. A session opened so says amr
// pwd: sensitive actions still ask for a code (see reauth.go). Removing the
// factor, an admin's reset, and any change or reset of the password forget
// the user's devices; lowering the tenant's days shortens them at once.

// EventMFADeviceRemembered is the audit event of a device remembered.
const EventMFADeviceRemembered = "mfa.device_remembered"

// RememberedDevice is a device that may skip the second factor, stored by
// the hash of its token.
type RememberedDevice struct {
	Hash       []byte
	UserID     string
	CreateTime time.Time
	ExpireTime time.Time
	UserAgent  string
}

// DeviceTx is what a transaction does with remembered devices.
type DeviceTx interface {
	InsertRememberedDevice(ctx context.Context, d *RememberedDevice) error
	// RememberedDevice returns ErrNotFound for an unknown token hash.
	RememberedDevice(ctx context.Context, hash []byte) (*RememberedDevice, error)
	// DeleteRememberedDevices forgets all the user's devices.
	DeleteRememberedDevices(ctx context.Context, userID string) error
}

// deviceRemembered reports whether token is a device of u remembered
// within the tenant's days (settings) that has not expired.
func (m *Manager) deviceRemembered(ctx context.Context, tx Tx, userID, token string, settings Settings) (bool, error) {
	if token == "" || len(token) > 128 || settings.MFARememberDays <= 0 {
		return false, nil
	}
	d, err := tx.RememberedDevice(ctx, hashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := m.now()
	limit := d.CreateTime.Add(time.Duration(settings.MFARememberDays) * 24 * time.Hour)
	return d.UserID == userID && now.Before(d.ExpireTime) && now.Before(limit), nil
}

// rememberDevice remembers the device of client c for u, for the tenant's
// days, and returns its token and expiry; none when the tenant does not
// remember devices.
func (m *Manager) rememberDevice(ctx context.Context, tx Tx, u *User, c Client) (string, time.Time, error) {
	settings, err := tx.Settings(ctx)
	if err != nil || settings.MFARememberDays <= 0 {
		return "", time.Time{}, err
	}
	token, hash := newSecret()
	now := m.now()
	d := &RememberedDevice{Hash: hash, UserID: u.ID, CreateTime: now,
		ExpireTime: now.Add(time.Duration(settings.MFARememberDays) * 24 * time.Hour), UserAgent: truncate(c.UserAgent, 512)}
	if err := tx.InsertRememberedDevice(ctx, d); err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Audit(ctx, AuditEvent{Event: EventMFADeviceRemembered, UserID: u.ID, ClientIP: c.IP,
		Details: map[string]any{"days": settings.MFARememberDays}}); err != nil {
		return "", time.Time{}, err
	}
	return token, d.ExpireTime, nil
}
