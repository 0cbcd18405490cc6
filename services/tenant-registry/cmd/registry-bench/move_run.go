package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tenantdb"
)

// The move row (issue 13): a tenant with cfg.moveMiB of data moved to
// another placement (a second database of the cluster) under a steady
// write load from writers that follow the move as services do
// (tenantdb.RetryMoving).
const (
	maxMoveFence = time.Second
	// moveWriterCount writers write at moveWriteEvery each: a steady load, not one
	// that saturates the machine's two cores (the copy needs them too).
	moveWriterCount = 4
	moveWriteEvery  = 10 * time.Millisecond
	// moveAfter is how long the writers go on once the move has switched.
	moveAfter = 2 * time.Second
	moveSlug  = "moving"
)

const (
	kMoveSize   = "move-size"
	kMoveTotal  = "move-total"
	kMoveFence  = "move-fence"
	kMovePause  = "move-pause"
	kMoveWrites = "move-writes"
	kMoveLost   = "move-lost"
)

var moveKeys = []string{kMoveSize, kMoveTotal, kMoveFence, kMovePause, kMoveWrites, kMoveLost}

func declareMoveMeasures(t *benchkit.Table, cfg config) {
	load := fmt.Sprintf("%d writers, one write each every %s", moveWriterCount, moveWriteEvery)
	t.Declare(kMoveSize, fmt.Sprintf("MoveTenant to another placement: the tenant's tables on the source (filled to %d MiB)", cfg.moveMiB), "MiB", "")
	t.Declare(kMoveTotal, "MoveTenant under writes ("+load+"): call to switched", "s", "")
	t.Declare(kMoveFence, "MoveTenant: writes fenced (fence to switch, from the operation)", "ms", fmt.Sprintf("< %d", maxMoveFence.Milliseconds()))
	t.Declare(kMovePause, "MoveTenant: longest a writer waited for one write, anywhere in the move (the copy's I/O as well as the fence)", "ms", "")
	t.Declare(kMoveWrites, "MoveTenant: writes acknowledged, before, during and after the move", "writes", "")
	t.Declare(kMoveLost, "MoveTenant: acknowledged writes missing on the target", "writes", "= 0")
}

// moveRun fills a tenant, moves it while writers write, and checks that
// every acknowledged write is on the target.
func (b *bench) moveRun(ctx context.Context) error {
	regURL, err := b.database(ctx, "registry_move")
	if err != nil {
		return err
	}
	secondURL, err := b.database(ctx, "registry_move_second")
	if err != nil {
		return err
	}
	reg, err := startRegistry(ctx, b.cfg.registryBin, regURL, b.tok, "registry-move", b.stderr, "TENANTRY_PLACEMENTS=second="+secondURL)
	if err != nil {
		return err
	}
	defer b.stopRegistry(reg)
	cl, err := dial(reg.Addr(), 1, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()
	pools := map[string]*pgxpool.Pool{}
	for name, url := range map[string]string{"default": regURL, "second": secondURL} {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer p.Close()
		pools[name] = p
	}
	if err := cl.registerComponent(ctx, "bench-move", []tenantdb.Migration{{Version: 1, Name: "create_items",
		SQL: `CREATE TABLE move_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)`}}); err != nil {
		return err
	}
	if _, err := cl.createTenant(ctx, 0, moveSlug); err != nil {
		return err
	}
	size, err := fillTenant(ctx, pools["default"], int64(b.cfg.moveMiB)*mebibyte)
	if err != nil {
		return fmt.Errorf("fill the tenant: %w", err)
	}
	b.tbl.Info(kMoveSize, benchkit.FormatMiB(uint64(size)))

	w := startMoveWriters(ctx, cl, pools)
	time.Sleep(time.Second) // the load is steady before the move starts
	b.log.Info("moving a tenant under writes", "MiB", size/mebibyte)
	start := time.Now()
	op, err := cl.moveTenant(ctx, moveSlug, "second")
	if err != nil {
		w.stop()
		return err
	}
	total := time.Since(start)
	time.Sleep(moveAfter)
	if err := w.stop(); err != nil {
		return fmt.Errorf("a writer failed: %w", err)
	}
	md := op.GetMoveMetadata()
	fence := md.GetFenceDuration().AsDuration()
	b.tbl.Info(kMoveTotal, benchkit.FormatSeconds(total))
	b.tbl.Set(kMoveFence, benchkit.FormatMillis(fence), benchkit.Verdict(fence < maxMoveFence))
	b.tbl.Info(kMovePause, benchkit.FormatMillis(time.Duration(w.maxWait.Load())))
	b.tbl.Info(kMoveWrites, benchkit.FormatCount(len(w.acked)))
	lost, err := missingOnTarget(ctx, pools["second"], w.acked)
	if err != nil {
		return err
	}
	b.tbl.Set(kMoveLost, benchkit.FormatCount(lost), benchkit.Verdict(lost == 0))
	return nil
}

// fillTenant inserts rows of about 1 KB into the tenant's table until its
// tables reach want bytes, and returns their size.
func fillTenant(ctx context.Context, db *pgxpool.Pool, want int64) (int64, error) {
	for {
		var size int64
		if err := db.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, moveSlug).Scan(&size); err != nil {
			return 0, err
		}
		if size >= want {
			return size, nil
		}
		if _, err := db.Exec(ctx, `INSERT INTO `+tenantdb.QualifiedName(moveSlug, "move_items")+` (body)
			SELECT repeat(md5(i::text), 30) FROM generate_series(1, 20000) i`); err != nil {
			return 0, err
		}
	}
}

// moveWriters write to the moving tenant as a service would: through
// tenantdb.RetryMoving, with the tenant's placement from the registry.
type moveWriters struct {
	halt    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   []int64
	maxWait atomic.Int64 // nanoseconds
	errs    []error
}

func startMoveWriters(ctx context.Context, cl *clients, pools map[string]*pgxpool.Pool) *moveWriters {
	w := &moveWriters{}
	current := func(ctx context.Context) (*registryv1.Tenant, error) {
		resp, err := cl.tenants[0].GetTenant(cl.asOperator(ctx), &registryv1.GetTenantRequest{Name: "tenants/" + moveSlug})
		return resp.GetTenant(), err
	}
	for range moveWriterCount {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			t, err := current(ctx)
			tick := time.NewTicker(moveWriteEvery)
			defer tick.Stop()
			for err == nil && !w.halt.Load() {
				<-tick.C
				began := time.Now()
				var id int64
				err = tenantdb.RetryMoving(ctx, t, (*registryv1.Tenant).GetPlacement, current,
					func(ctx context.Context, tn *registryv1.Tenant) error {
						t = tn
						return tenantdb.InTenant(ctx, pools[tn.GetPlacement()], tn.GetSchema(), func(ctx context.Context, tx pgx.Tx) error {
							return tx.QueryRow(ctx, `INSERT INTO move_items (body) VALUES ('written under the move') RETURNING id`).Scan(&id)
						})
					})
				if err != nil {
					break
				}
				if d := time.Since(began).Nanoseconds(); d > w.maxWait.Load() {
					w.maxWait.Store(d) // racy max; a lost update only lowers a pause by one write
				}
				w.mu.Lock()
				w.acked = append(w.acked, id)
				w.mu.Unlock()
			}
			if err != nil {
				w.mu.Lock()
				w.errs = append(w.errs, err)
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *moveWriters) stop() error {
	w.halt.Store(true)
	w.wg.Wait()
	return errors.Join(w.errs...)
}

// missingOnTarget counts the acknowledged ids the target lacks.
func missingOnTarget(ctx context.Context, db *pgxpool.Pool, ids []int64) (int, error) {
	var missing int
	err := db.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) AS a(id)
		WHERE NOT EXISTS (SELECT 1 FROM `+tenantdb.QualifiedName(moveSlug, "move_items")+` m WHERE m.id = a.id)`, ids).Scan(&missing)
	return missing, err
}

// moveTenant moves a tenant and waits for the operation to end.
func (c *clients) moveTenant(ctx context.Context, slug, placement string) (*registryv1.Operation, error) {
	resp, err := c.tenants[0].MoveTenant(c.asOperator(ctx), &registryv1.MoveTenantRequest{
		Name: "tenants/" + slug, Placement: placement, Grace: durationpb.New(time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("MoveTenant: %w", err)
	}
	op := resp.GetOperation()
	ops := registryv1.NewOperationServiceClient(c.conns[0])
	for !op.GetDone() {
		w, err := ops.WaitOperation(c.asOperator(ctx), &registryv1.WaitOperationRequest{Name: op.GetName(), Timeout: durationpb.New(10 * time.Second)})
		if err != nil {
			return nil, fmt.Errorf("WaitOperation: %w", err)
		}
		op = w.GetOperation()
	}
	if e := op.GetError(); e != nil {
		return nil, fmt.Errorf("the move failed: %s (%s)", e.GetMessage(), e.GetReason())
	}
	return op, nil
}
