package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
	if opts.Ping <= 0 {
		opts.Ping = 10 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 2 * time.Second
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	var wg sync.WaitGroup
	for name := range s.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.follow(ctx, name, l, opts)
		}()
	}
	wg.Wait()
}

func (s *Store) follow(ctx context.Context, placement string, l Listener, opts FollowOptions) {
	backoff := opts.Backoff
	for ctx.Err() == nil {
		heard, err := s.listen(ctx, placement, l, opts)
		l.SetOnline(placement, false)
		if ctx.Err() != nil {
			return
		}
		if heard {
			backoff = opts.Backoff
		}
		s.logger.WarnContext(ctx, "session cache announcements lost their connection; the cache is off until it is back",
			"placement", placement, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, opts.MaxBackoff)
	}
}

// listen holds one LISTEN connection until it fails; heard says whether it
// got as far as listening.
func (s *Store) listen(ctx context.Context, placement string, l Listener, opts FollowOptions) (heard bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pools[placement].Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{CacheChannel}.Sanitize()); err != nil {
		return false, err
	}
	l.SetOnline(placement, true)
	for {
		wctx, cancel := context.WithTimeout(ctx, opts.Ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && wctx.Err() != nil:
			// Silence: make sure the connection is still alive.
			pctx, cancel := context.WithTimeout(ctx, opts.PingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
		case err != nil:
			return true, err
		default:
			if !announce(l, n.Payload) {
				s.logger.WarnContext(ctx, "ignoring a malformed session cache announcement", "payload", n.Payload)
			}
		}
	}
}

// errMalformed is returned by parseAnnouncement.
var errMalformed = errors.New("malformed announcement")

// parseAnnouncement reads "<s|u> <uuid> <schema>".
func parseAnnouncement(payload string) (user bool, id, schema string, err error) {
	kind, rest, ok := strings.Cut(payload, " ")
	if !ok || (kind != "s" && kind != "u") {
		return false, "", "", errMalformed
	}
	id, schema, ok = strings.Cut(rest, " ")
	if !ok || !isUUID(id) || schema == "" {
		return false, "", "", errMalformed
	}
	return kind == "u", id, schema, nil
}

func announce(inv Invalidator, payload string) bool {
	user, id, schema, err := parseAnnouncement(payload)
	if err != nil {
		return false
	}
	change{user: user, id: id}.apply(inv, schema)
	return true
}
