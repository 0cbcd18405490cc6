package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/tenancy"
)

// Rotations of refresh tokens are the one write every active client makes
// every few minutes, so they get a path of their own: the refreshes that
// arrive while others are being written are written together, in one
// transaction of one round trip (a statement per tenant schema in the
// batch), instead of a transaction of eight round trips each. That path
// only ever does the ordinary rotation; a token that is unknown, used, or
// of an ended session or disabled user is left untouched for the caller's
// one-by-one path, which applies every rule (reuse revokes the session).
const (
	// maxRotationBatch bounds the refreshes written in one transaction.
	maxRotationBatch = 64
	// rotationWorkers is how many batches of a placement may be in
	// flight at once: one being written while the next one fills.
	rotationWorkers = 2
	// rotationTimeout bounds one batch's transaction.
	rotationTimeout = 10 * time.Second
)

// rotateSQL rotates every token of the batch whose session is open and
// whose user is enabled: it marks the old token used, extends the session
// (never past its maximum age; at most once a minute), stores the new token
// and returns the rotated tokens' sessions and users. The UPDATE's row lock
// on the old token and its use_time IS NULL condition, re-checked after any
// wait for that lock, make a token rotate once however many present it at
// once; the others find it used and take the one-by-one path, which treats
// that as reuse. A session ended by a transaction that commits while this one runs
// is not re-read: the rotation is ordered before the ending, whose effect
// (the session refused) is the same.
//
// The tables are qualified with {schema}, the quoted schema name, rather
// than found through search_path: pgx prepares a batch's statements before
// sending it, when no search_path of the batch is in force yet. So each
// tenant has its own prepared statement on a connection, kept in pgx's
// per-connection statement cache (least recently used ones dropped).
//
// $1 old token hashes, $2 new token hashes (pairwise), $3 now, $4 the
// expiry now + session TTL, $5 the sessions' maximum age.
const rotateSQL = `
WITH input AS (
	SELECT old_hash, new_hash FROM unnest($1::bytea[], $2::bytea[]) AS i(old_hash, new_hash)
),
-- Every row is reached by its primary key, one lookup per table and
-- token. Each lookup is a LATERAL subquery with LIMIT 1, which the planner
-- cannot flatten into a join it may reorder: left free, it chose to go from
-- the sessions to their tokens, reading every token a busy session ever had.
found AS MATERIALIZED (
	SELECT i.old_hash, i.new_hash, s.session_id, u.user_id, u.roles
	FROM input i
	CROSS JOIN LATERAL (
		SELECT r.session_id FROM {schema}.refresh_tokens r WHERE r.token_hash = i.old_hash AND r.use_time IS NULL LIMIT 1
	) r
	CROSS JOIN LATERAL (
		SELECT s.id AS session_id, s.user_id FROM {schema}.sessions s
		WHERE s.id = r.session_id AND s.revoke_time IS NULL AND s.expire_time > $3 LIMIT 1
	) s
	CROSS JOIN LATERAL (
		SELECT u.id AS user_id, u.roles FROM {schema}.users u WHERE u.id = s.user_id AND NOT u.disabled LIMIT 1
	) u
),
rotated AS (
	UPDATE {schema}.refresh_tokens r SET use_time = $3
	WHERE r.token_hash = ANY (ARRAY(SELECT old_hash FROM found)) AND r.use_time IS NULL
	RETURNING r.token_hash
),
done AS (
	SELECT f.* FROM found f JOIN rotated ON rotated.token_hash = f.old_hash
),
touched AS (
	-- A session is extended at most once a minute: its expiry is days
	-- away, and a session row rewritten on every refresh of a busy client
	-- piles up dead row versions that every lookup of it has to step over.
	UPDATE {schema}.sessions s SET refresh_time = $3, expire_time = least($4, s.create_time + $5::interval)
	WHERE s.id = ANY (ARRAY(SELECT session_id FROM done)) AND s.refresh_time < $3 - interval '1 minute'
),
issued AS (
	INSERT INTO {schema}.refresh_tokens (token_hash, session_id, create_time)
	SELECT new_hash, session_id, $3 FROM done
)
SELECT new_hash, session_id::text, user_id::text, roles FROM done`

// rotation is one refresh waiting for its batch.
type rotation struct {
	schema string
	in     account.Rotation
	done   chan rotationResult
}

type rotationResult struct {
	out account.Rotated
	err error
}

// rotator batches one placement's rotations.
type rotator struct {
	queue chan *rotation
}

// RunRotations writes batched rotations until ctx ends. Without it running
// (before it starts, after it stops), Rotate rotates nothing and every
// refresh takes the one-by-one path. It runs once per Store.
func (s *Store) RunRotations(ctx context.Context) {
	done := make(chan struct{})
	running := 0
	for name, r := range s.rotators {
		for range rotationWorkers {
			running++
			go func() {
				defer func() { done <- struct{}{} }()
				s.rotateLoop(ctx, name, r)
			}()
		}
	}
	s.rotating.Store(true)
	<-ctx.Done()
	s.rotating.Store(false)
	for range running {
		<-done
	}
	close(s.rotationsStopped)
}

// Rotate implements account.Rotator: it rotates in.OldHash into
// in.NewHash if that is the ordinary case, batched with the rotations of
// other calls; Rotated.OK is false when it is not (or when no batching
// runs), with nothing changed.
func (s *Store) Rotate(ctx context.Context, t tenancy.Tenant, in account.Rotation) (account.Rotated, error) {
	r, ok := s.rotators[t.Placement]
	if !ok || !s.rotating.Load() {
		return account.Rotated{}, nil
	}
	if err := s.ensureMigrated(ctx, t); err != nil {
		return account.Rotated{}, err
	}
	rot := &rotation{schema: t.Schema, in: in, done: make(chan rotationResult, 1)}
	select {
	case r.queue <- rot:
	case <-ctx.Done():
		return account.Rotated{}, ctx.Err()
	}
	select {
	case res := <-rot.done:
		return res.out, res.err
	case <-s.rotationsStopped:
		// Every worker has delivered what it took; what is left in the
		// queue was never taken.
		select {
		case res := <-rot.done:
			return res.out, res.err
		default:
			return account.Rotated{}, nil
		}
	case <-ctx.Done():
		// The batch may still rotate it: like a reply lost on the network.
		return account.Rotated{}, ctx.Err()
	}
}

func (s *Store) rotateLoop(ctx context.Context, placement string, r *rotator) {
	for {
		var batch []*rotation
		select {
		case <-ctx.Done():
			return
		case rot := <-r.queue:
			batch = append(batch, rot)
		}
	fill:
		for len(batch) < maxRotationBatch {
			select {
			case rot := <-r.queue:
				batch = append(batch, rot)
			default:
				break fill
			}
		}
		results, err := s.rotateBatch(ctx, placement, batch)
		for i, rot := range batch {
			if err != nil {
				rot.done <- rotationResult{err: err}
				continue
			}
			rot.done <- results[i]
		}
	}
}

// rotateBatch writes a batch in one transaction and one round trip: the
// rotations grouped by schema, each group one rotateSQL in its schema.
func (s *Store) rotateBatch(ctx context.Context, placement string, batch []*rotation) ([]rotationResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rotationTimeout)
	defer cancel()
	groups := map[string][]int{}
	var order []string
	for i, rot := range batch {
		if _, ok := groups[rot.schema]; !ok {
			order = append(order, rot.schema)
		}
		groups[rot.schema] = append(groups[rot.schema], i)
	}
	results := make([]rotationResult, len(batch))
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	// Planned afresh on each execution, the statement's planning costs
	// more than its execution; its generic plan uses the same indexes. That
	// plan is made once per connection, maybe while the tables are small,
	// when a sequential scan looks cheap and is then kept as they grow: every
	// row the statement touches is one a key names, so scans are ruled out.
	b.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
	b.Queue("SET LOCAL enable_seqscan = off")
	for _, schema := range order {
		// A token presented twice in one batch is rotated for the first
		// caller only; the others take the one-by-one path, which sees
		// reuse.
		seen := map[string]bool{}
		var olds, news [][]byte
		var kept []int
		for _, i := range groups[schema] {
			old := string(batch[i].in.OldHash)
			if seen[old] {
				continue
			}
			seen[old] = true
			kept = append(kept, i)
			olds, news = append(olds, batch[i].in.OldHash), append(news, batch[i].in.NewHash)
		}
		idx := kept
		// All of a group share now, expiry and maximum age: the first
		// one's, which the others' differ from by the batch's wait at most.
		first := batch[idx[0]].in
		maxAge := pgtype.Interval{Microseconds: first.MaxAge.Microseconds(), Valid: true}
		byNew := map[string]int{}
		for _, i := range idx {
			byNew[string(batch[i].in.NewHash)] = i
		}
		b.Queue(strings.ReplaceAll(rotateSQL, "{schema}", pgx.Identifier{schema}.Sanitize()), olds, news, first.Now, first.Expires, maxAge).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					newHash []byte
					out     account.Rotated
				)
				if err := rows.Scan(&newHash, &out.SessionID, &out.UserID, &out.Roles); err != nil {
					return err
				}
				i, ok := byNew[string(newHash)]
				if !ok {
					return fmt.Errorf("rotated a token that was not asked for")
				}
				out.OK = true
				results[i].out = out
			}
			return rows.Err()
		})
	}
	b.Queue("COMMIT")
	pool := s.pools[placement]
	br := pool.SendBatch(ctx, b)
	err := br.Close()
	_ = br.Tx().Rollback(ctx) // returns the connection; a no-op after COMMIT
	if err == nil {
		return results, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// PostgreSQL refused the batch (a deadlock with another batch, for
		// instance), so nothing of it was written: everyone takes the
		// one-by-one path, which reports its own errors.
		s.logger.WarnContext(ctx, "a batch of refresh token rotations failed; taking them one by one", "size", len(batch), "err", err)
		return make([]rotationResult, len(batch)), nil
	}
	// The connection failed: the batch may or may not have been written.
	return nil, fmt.Errorf("rotate %d refresh tokens: %w", len(batch), err)
}
