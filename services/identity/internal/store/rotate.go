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
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/tenantdb"
)

// Rotations of refresh tokens are the one write every active client makes
// every few minutes, so they get a path of their own: the refreshes that
// arrive while others are being written are written together, in one
// transaction of one round trip (a statement per tenant schema in the
// batch), instead of a transaction of eight round trips each. That path
// only ever does the ordinary rotation; a token that is not its session's
// current one, or of an ended session or disabled user, is left untouched
// for the caller's one-by-one path, which applies every rule (reuse
// revokes the session).
const (
	// maxRotationBatch bounds the refreshes written in one transaction.
	maxRotationBatch = 64
	// rotationWorkers is how many batches of a placement may be in
	// flight at once. One: the next batch fills while the last one
	// commits. With two, the idle worker took each refresh as it came,
	// in batches of one or two, and both identity and PostgreSQL spent
	// half again as much per refresh (44 against 65 µs in PostgreSQL).
	// A batch waiting on a row lock holds up the placement's refreshes
	// for as long; the locks it can meet are short transactions'.
	rotationWorkers = 1
	// rotationTimeout bounds one batch's transaction.
	rotationTimeout = 10 * time.Second
)

// rotateSQL rotates every session of the batch whose current refresh token
// is still the one presented, whose session is open and whose user is
// enabled: it moves the session to the next generation and the new token's
// hash, extends it (never past its maximum age) and returns the rotated
// sessions and their users. The UPDATE's row lock and its generation and
// hash conditions, re-checked after any wait for that lock, make a token
// rotate once however many present it at once; the others find the
// generation moved on and take the one-by-one path, which treats that as
// reuse. A session ended, or a user disabled, by a transaction that commits
// while this one runs is not re-read: the rotation is ordered before the
// change, whose effect (the session refused) is the same.
//
// Every refresh rewrites one session row and no indexed column, so the
// update is HOT and writes no index entry.
//
// The tables are qualified with {schema}, the quoted schema name, rather
// than found through search_path: pgx prepares a batch's statements before
// sending it, when no search_path of the batch is in force yet. So each
// tenant has its own prepared statement on a connection, kept in pgx's
// per-connection statement cache (least recently used ones dropped).
//
// $1 session ids, $2 their presented generations, $3 the presented tokens'
// hashes, $4 the new tokens' hashes (all four pairwise), $5 now, $6 the
// expiry now + session TTL, $7 the sessions' maximum age, $8 the clients
// presenting the tokens (” for identity's own RefreshSession): a grant's
// token rotates only for the client holding the grant, a login's only
// through RefreshSession.
const rotateSQL = `
UPDATE {schema}.sessions s
SET refresh_generation = s.refresh_generation + 1, refresh_hash = i.new_hash,
	refresh_time = $5, expire_time = least($6, s.create_time + $7::interval)
FROM unnest($1::uuid[], $2::bigint[], $3::bytea[], $4::bytea[], $8::text[]) AS i(id, generation, old_hash, new_hash, client_id),
	{schema}.users u
WHERE s.id = i.id AND s.refresh_generation = i.generation AND s.refresh_hash = i.old_hash
	AND COALESCE(s.client_id, '') = i.client_id
	AND s.revoke_time IS NULL AND s.expire_time > $5
	AND u.id = s.user_id AND NOT u.disabled
RETURNING s.id::text, u.id::text, u.roles, s.scopes, s.auth_time, s.amr`

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
		if tenantdb.IsMoving(res.err) {
			// A tenant of the batch is moving (its fence failed the whole
			// batch): each rotation takes the one-by-one path, which
			// follows the move.
			return account.Rotated{}, nil
		}
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
		// A session presented twice in one batch is rotated for the first
		// caller only; the others take the one-by-one path, which sees
		// the generation moved on (reuse) or the token unknown.
		bySession := map[string]int{}
		var (
			ids        []string
			gens       []int64
			olds, news [][]byte
			clients    []string
		)
		for _, i := range groups[schema] {
			in := batch[i].in
			if _, dup := bySession[in.SessionID]; dup {
				continue
			}
			if !isUUID(in.SessionID) {
				continue // never rotated: the one-by-one path says why
			}
			bySession[in.SessionID] = i
			ids = append(ids, in.SessionID)
			gens = append(gens, in.Generation)
			olds, news = append(olds, in.OldHash), append(news, in.NewHash)
			clients = append(clients, in.ClientID)
		}
		if len(ids) == 0 {
			continue
		}
		// All of a group share now, expiry and maximum age: the first
		// one's, which the others' differ from by the batch's wait at most.
		first := batch[groups[schema][0]].in
		maxAge := pgtype.Interval{Microseconds: first.MaxAge.Microseconds(), Valid: true}
		b.Queue(strings.ReplaceAll(rotateSQL, "{schema}", pgx.Identifier{schema}.Sanitize()),
			ids, gens, olds, news, first.Now, first.Expires, maxAge, clients).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					out      account.Rotated
					authTime *time.Time
				)
				if err := rows.Scan(&out.SessionID, &out.UserID, &out.Roles, &out.Scopes, &authTime, &out.AMR); err != nil {
					return err
				}
				if len(out.AMR) == 0 {
					out.AMR = account.AMRPassword
				}
				if authTime != nil {
					out.AuthTime = *authTime
				}
				i, ok := bySession[out.SessionID]
				if !ok {
					return fmt.Errorf("rotated session %s, which was not asked for", out.SessionID)
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
