package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/leader"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/config"
)

// Replicas of the registry on one database elect one leader to run the
// background work (here: purges after the grace period, by the reconciler).
// While nobody can lead, nobody purges; when the leader stops, or its lease
// session is terminated in PostgreSQL, another replica takes over and the
// work goes on. Two replicas never lead at once.
func TestOneReplicaRunsTheBackgroundWorkAndAnotherTakesOver(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	replica := func(c *config.Config) {
		c.PurgeGrace = 0
		c.ReconcileInterval = 100 * time.Millisecond
	}
	// The test holds the lease first: no replica can lead.
	holder, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer holder.Close(context.Background())
	k1, k2 := leader.Key("tenant-registry")
	_, err = holder.Exec(context.Background(), `SELECT pg_advisory_lock($1, $2)`, k1, k2)
	require.NoError(t, err)

	replicas := map[string]*registry{"a": startRegistry(t, url, replica), "b": startRegistry(t, url, replica)}
	leaders := watchReplicas(t, replicas)
	purged := func(via *registry, slug string) func() bool {
		return func() bool {
			_, err := via.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/" + slug})
			return status.Code(err) == codes.NotFound && !schemaExists(t, via.db, slug)
		}
	}
	deleteThrough := func(via *registry, slug string) {
		t.Helper()
		via.create(slug)
		_, err := via.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/" + slug})
		require.NoError(t, err)
	}

	t.Run("without the lease, no replica purges", func(t *testing.T) {
		deleteThrough(replicas["a"], "waiting")
		time.Sleep(time.Second) // ten reconciler intervals in which nothing may happen
		require.Empty(t, leaders.now())
		require.True(t, schemaExists(t, replicas["a"].db, "waiting"), "a follower purged")
	})

	var first string
	t.Run("once the lease is free, one replica leads and purges", func(t *testing.T) {
		_, err := holder.Exec(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, k1, k2)
		require.NoError(t, err)
		first = leaders.wait(t)
		eventually(t, 20*time.Second, "the leader to purge", purged(replicas["a"], "waiting"))
		require.Equal(t, []string{first}, leaders.now())
	})

	var second string
	t.Run("when the leader stops, the other takes over and purges", func(t *testing.T) {
		replicas[first].stop()
		second = leaders.wait(t, first)
		deleteThrough(replicas[second], "after-stop")
		eventually(t, 20*time.Second, "the new leader to purge", purged(replicas[second], "after-stop"))
	})

	t.Run("when the leader's lease session is terminated, a replica takes over and purges", func(t *testing.T) {
		replicas["c"] = startRegistry(t, url, replica)
		leaders.add("c", replicas["c"])
		require.Equal(t, []string{second}, leaders.now(), "a new replica does not unseat the leader")
		var pid int32
		require.NoError(t, holder.QueryRow(context.Background(), `SELECT l.pid FROM pg_locks l
			WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int8::oid AND l.objid = $2::int8::oid AND l.objsubid = 2
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, k1, k2).Scan(&pid))
		var appName string
		require.NoError(t, holder.QueryRow(context.Background(), `SELECT application_name FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&appName))
		require.Equal(t, "tenantry leader: tenant-registry", appName, "the lease's session says what it is")
		_, err := holder.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid)
		require.NoError(t, err)
		eventually(t, 20*time.Second, "the leader to notice", func() bool { return !replicas[second].app.Leading() })
		third := leaders.wait(t)
		t.Logf("%s leads after %s's session was terminated", third, second)
		deleteThrough(replicas[third], "after-terminate")
		eventually(t, 20*time.Second, "the leader to purge", purged(replicas[third], "after-terminate"))
	})

	require.Equal(t, 1, leaders.most(), "two replicas led at once")
}

// A fleet migration running on the leader goes on when the leader stops:
// its lease is released, and the replica that leads next resumes it and
// finishes every tenant exactly once.
func TestTheNextLeaderResumesTheMigrationsTheLastLeft(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	withLease := func(c *config.Config) { c.OperationLease = time.Second }
	replicas := map[string]*registry{"a": startRegistry(t, url, withLease), "b": startRegistry(t, url, withLease)}
	leaders := watchReplicas(t, replicas)
	first := leaders.wait(t)
	r := replicas[first]
	_, err := r.register(notes())
	require.NoError(t, err)
	const tenants = 12
	for i := range tenants {
		r.create(fmt.Sprintf("m%02d", i))
	}
	_, err = r.register(notes(&registryv1.Migration{Version: 3, Name: "slow", Sql: `SELECT pg_sleep(0.1); ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`}))
	require.NoError(t, err)
	resp, err := r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Concurrency: 1})
	require.NoError(t, err)
	name := resp.GetOperation().GetName()
	eventually(t, 30*time.Second, "the migration to be under way", func() bool {
		got, err := r.operations().GetOperation(operator(), &registryv1.GetOperationRequest{Name: name})
		require.NoError(t, err)
		return got.GetOperation().GetMetadata().GetDone() >= 2
	})
	r.stop()

	next := replicas[leaders.wait(t, first)]
	op := next.wait(name)
	require.Nil(t, op.GetError())
	require.Empty(t, op.GetResult().GetFailures())
	require.EqualValues(t, tenants, op.GetMetadata().GetDone(), "every tenant done, each counted once")
	for i := range tenants {
		require.Contains(t, columns(t, next.db, fmt.Sprintf("m%02d", i), "notes"), "pinned")
	}
	require.Equal(t, 1, leaders.most(), "two replicas led at once")
}

// replicaWatch samples which replicas lead, every millisecond, and keeps
// the most that ever led at once.
type replicaWatch struct {
	mu       sync.Mutex
	replicas map[string]*registry
	current  []string
	maxSeen  int
}

func watchReplicas(t *testing.T, replicas map[string]*registry) *replicaWatch {
	w := &replicaWatch{replicas: map[string]*registry{}}
	for name, r := range replicas {
		w.replicas[name] = r
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			w.mu.Lock()
			var now []string
			for name, r := range w.replicas {
				if r.app.Leading() {
					now = append(now, name)
				}
			}
			slices.Sort(now)
			w.current = now
			w.maxSeen = max(w.maxSeen, len(now))
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *replicaWatch) add(name string, r *registry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replicas[name] = r
}

func (w *replicaWatch) now() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.current)
}

func (w *replicaWatch) most() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxSeen
}

// wait waits until exactly one replica leads, one not named in not, and
// returns its name.
func (w *replicaWatch) wait(t *testing.T, not ...string) string {
	t.Helper()
	var got string
	eventually(t, 20*time.Second, "one replica to lead", func() bool {
		now := w.now()
		if len(now) == 1 && !slices.Contains(not, now[0]) {
			got = now[0]
			return true
		}
		return false
	})
	return got
}
