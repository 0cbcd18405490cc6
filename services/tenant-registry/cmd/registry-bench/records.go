package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/tenantname"
)

// recordSlug names the i-th tenant of the memory database. Six digits leave
// room for a million; the "r" keeps them apart from the API run's tenants.
func recordSlug(i int) string { return fmt.Sprintf("r%06d", i) }

// recordDomains are the custom domains every bulk-inserted tenant gets, the
// first one primary.
func recordDomains(slug string) []string {
	return []string{slug + ".example.com", "www." + slug + ".example.com"}
}

// recordLabels are the labels of the i-th bulk-inserted tenant.
func recordLabels(i int) map[string]string {
	plans := [...]string{"free", "standard", "premium"}
	regions := [...]string{"eu-west", "us-east", "ap-south"}
	return map[string]string{"plan": plans[i%len(plans)], "region": regions[i/3%len(regions)], "source": "registry-bench"}
}

// insertRecords writes tenants first..first+n-1 straight into the registry's
// tables of the database at url, ACTIVE, with two custom domains and three
// labels each, and advances the registry's revision past them, all in one
// transaction. It writes no change-log events and creates no tenant
// schemas: a registry builds its in-memory index from the tenants and
// domains tables alone, which is what the memory measure is about.
func insertRecords(ctx context.Context, url string, first, n int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to the memory database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var revision int64
		if err := tx.QueryRow(ctx, `SELECT value FROM tenantry_registry.revision FOR UPDATE`).Scan(&revision); err != nil {
			return fmt.Errorf("read the registry revision: %w", err)
		}
		uids := make([]string, n)
		for i := range uids {
			uids[i] = uuid.NewString()
		}
		now := time.Now().UTC()

		i := 0
		tenants := pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			slug := recordSlug(first + i)
			row := []any{uids[i], slug, "Record tenant " + slug, "ACTIVE", tenantname.SchemaName(slug), "default",
				recordLabels(first + i), now, now, revision + int64(i) + 1}
			i++
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tenantry_registry", "tenants"},
			[]string{"uid", "slug", "display_name", "state", "schema_name", "placement", "labels", "create_time", "update_time", "revision"},
			tenants); err != nil {
			return fmt.Errorf("copy tenants: %w", err)
		}

		j := 0
		domains := pgx.CopyFromFunc(func() ([]any, error) {
			if j == 2*n {
				return nil, nil
			}
			k, position := j/2, j%2
			j++
			return []any{recordDomains(recordSlug(first + k))[position], uids[k], position == 0, position}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tenantry_registry", "domains"},
			[]string{"host", "tenant_uid", "is_primary", "position"}, domains); err != nil {
			return fmt.Errorf("copy domains: %w", err)
		}

		if _, err := tx.Exec(ctx, `UPDATE tenantry_registry.revision SET value = $1`, revision+int64(n)); err != nil {
			return fmt.Errorf("advance the registry revision: %w", err)
		}
		// The registry reads these tables at start-up; fresh statistics
		// keep its one big query from being planned on empty-table guesses.
		if _, err := tx.Exec(ctx, `ANALYZE tenantry_registry.tenants, tenantry_registry.domains`); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
		return nil
	})
}
