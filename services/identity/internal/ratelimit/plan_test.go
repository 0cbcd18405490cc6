package ratelimit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
)

// pgx caches prepared statements, so a connection keeps the generic plan it
// made when the table was empty. That plan must still find rows by the
// primary key once the table holds many.
func TestDecisionFindsRowsByPrimaryKeyInAGenericPlan(t *testing.T) {
	t.Parallel()
	_, pool, _ := newLimiter(t, nil)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()

	_, err = conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "PREPARE decide(text[], bigint[], integer[], timestamptz) AS "+ratelimit.DecideSQL)
	require.NoError(t, err)
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE decide(NULL, NULL, NULL, NULL)")
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(t, rows.Err())

	text := strings.Join(plan, "\n")
	require.Contains(t, text, "Index Scan using rate_limits_pkey", text)
	require.NotContains(t, text, "Seq Scan on rate_limits", text)
}
