package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/pglisten"
)

// CacheChannel is the notification channel on which the tenant schemas'
// triggers (migration 0002) announce revoked sessions and changed users.
const CacheChannel = "tenantry_identity_cache"

// Listener hears the announcements of every placement.
type Listener interface {
	Invalidator
	// SetOnline says whether a placement's announcements are being heard;
	// what was cached while they were not may be stale.
	SetOnline(placement string, listening bool)
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Ping is how long the connection may stay silent before it is checked
	// with a query; a connection that died without closing is noticed
	// within Ping plus PingTimeout. Zero means 10s.
	Ping time.Duration
	// PingTimeout bounds that check. Zero means 2s.
	PingTimeout time.Duration
	// Backoff is the first pause before reconnecting; it doubles up to
	// MaxBackoff. Zero means 100ms and 5s.
	Backoff, MaxBackoff time.Duration
}

// Follow listens on CacheChannel in every placement until ctx ends,
// passing each announcement to l. A placement whose connection fails is
// reported offline at once and online again once it listens anew.
func (s *Store) Follow(ctx context.Context, l Listener, opts FollowOptions) {
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 2 * time.Second
	}
	var wg sync.WaitGroup
	for name, pool := range s.pools {
		wg.Go(func() {
			pglisten.Run(ctx, pool, pglisten.Options{
				Channel:    CacheChannel,
				What:       "session cache announcements (the cache is off until they are back)",
				Idle:       opts.Ping,
				Backoff:    opts.Backoff,
				MaxBackoff: opts.MaxBackoff,
				Logger:     s.logger.With("placement", name),
				OnListen: func(context.Context) error {
					l.SetOnline(name, true)
					return nil
				},
				OnNotify: func(ctx context.Context, payload string) error {
					if !announce(l, payload) {
						s.logger.WarnContext(ctx, "ignoring a malformed session cache announcement", "payload", payload)
					}
					return nil
				},
				OnIdle: func(ctx context.Context, conn *pgx.Conn) error {
					pctx, cancel := context.WithTimeout(ctx, opts.PingTimeout)
					defer cancel()
					return conn.Ping(pctx)
				},
				OnLost: func() { l.SetOnline(name, false) },
			})
		})
	}
	wg.Wait()
}

// errMalformed is returned by parseAnnouncement.
var errMalformed = errors.New("malformed announcement")

// parseAnnouncement reads "<s|u> <uuid> <schema>", or "c <schema>" for a
// tenant's login configuration (migration 0009).
func parseAnnouncement(payload string) (change, string, error) {
	kind, rest, ok := strings.Cut(payload, " ")
	if ok && kind == "c" && rest != "" && !strings.Contains(rest, " ") {
		return change{kind: configChange}, rest, nil
	}
	if !ok || (kind != "s" && kind != "u") {
		return change{}, "", errMalformed
	}
	id, schema, ok := strings.Cut(rest, " ")
	if !ok || !isUUID(id) || schema == "" {
		return change{}, "", errMalformed
	}
	c := change{id: id}
	if kind == "u" {
		c.kind = userChange
	}
	return c, schema, nil
}

func announce(inv Invalidator, payload string) bool {
	c, schema, err := parseAnnouncement(payload)
	if err != nil {
		return false
	}
	c.apply(inv, schema)
	return true
}
