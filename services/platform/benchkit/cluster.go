package benchkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/pgcluster"
)

// clusterStopTimeout bounds stopping the cluster at the end of a run.
const clusterStopTimeout = time.Minute

// Cluster is a throwaway PostgreSQL cluster for one run, with durable
// settings (fsync and synchronous_commit on) so that writes pay for real
// commits, as in production. It is stopped with this process however it
// ends; [Cluster.Cleanup] stops it in order and removes its directory.
type Cluster struct {
	log, quiet  *slog.Logger
	dir         string
	pg          *pgcluster.Cluster
	description string
}

// NewCluster returns a cluster not yet started that logs its steps to log
// and hands quiet to pgcluster, which logs every step at info.
func NewCluster(log, quiet *slog.Logger) *Cluster {
	return &Cluster{log: log, quiet: quiet}
}

// Start initialises and starts the cluster in a new temporary directory
// named after tempPattern (see os.MkdirTemp). Whatever it returns,
// [Cluster.Cleanup] undoes what it did.
func (c *Cluster) Start(ctx context.Context, tempPattern string) error {
	dir, err := pgcluster.MkdirTemp("", tempPattern)
	if err != nil {
		return err
	}
	c.dir = dir
	c.log.Info("starting PostgreSQL", "dir", dir)
	pg, err := pgcluster.Init(ctx, pgcluster.Options{
		DataDir:         filepath.Join(dir, "data"),
		StopWithProcess: true,
		Logger:          c.quiet,
	})
	if err != nil {
		return err
	}
	c.pg = pg
	if err := pg.Start(ctx); err != nil {
		return err
	}
	c.description = c.describe(ctx)
	return nil
}

// PG is the running cluster; nil before Start has initialised it.
func (c *Cluster) PG() *pgcluster.Cluster { return c.pg }

// Description names the server's version and durability settings as they
// are, for a report's header; "not started" before Start succeeded.
func (c *Cluster) Description() string {
	if c.description == "" {
		return "not started"
	}
	return c.description
}

// describe reads the server's version and durability settings, so the
// header states them as they are rather than as intended.
func (c *Cluster) describe(ctx context.Context) string {
	conn, err := pgx.Connect(ctx, c.pg.URL("postgres"))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version, fsync, syncCommit, sharedBuffers string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &sharedBuffers)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("PostgreSQL %s, fsync=%s, synchronous_commit=%s, shared_buffers=%s", version, fsync, syncCommit, sharedBuffers)
}

// CreateDatabase creates a database in the running cluster and returns
// its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.pg.CreateDatabase(ctx, name); err != nil {
		return "", err
	}
	return c.pg.URL(name), nil
}

// Cleanup stops the cluster and removes its directory, logging rather than
// returning failures: the run has reported by then. A cluster that does not
// stop keeps its directory, for a look at its logs.
func (c *Cluster) Cleanup() {
	if c.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), clusterStopTimeout)
		defer cancel()
		if err := c.pg.Stop(ctx); err != nil {
			c.log.Error("stop PostgreSQL; its data directory is kept", "err", err, "dir", c.dir)
			return
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			c.log.Warn("remove the temporary directory", "err", err)
		}
	}
}
