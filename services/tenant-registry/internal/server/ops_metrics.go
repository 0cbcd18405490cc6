package server

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"tenantry.dev/tenant-registry/internal/move"
)

// Progress of long-running operations (fleet migrations, tenant moves),
// read from the registry database when scraped, so that every replica
// reports the same numbers whichever one runs the work (aggregate with
// max). Labels are bounded: an operation id appears only while the
// operation runs, and runs are few.
var (
	opTenantsDesc = prometheus.NewDesc("tenantry_registry_operation_tenants",
		"Tenants of a running fleet migration: total to migrate, done, failed so far.",
		[]string{"operation", "kind", "progress"}, nil)
	opRunningDesc = prometheus.NewDesc("tenantry_registry_operations_running",
		"Long-running operations running, by kind.", []string{"kind"}, nil)
	movesDesc = prometheus.NewDesc("tenantry_registry_moves",
		"Tenant moves by phase (SWITCHED: the old copy waits for its grace).", []string{"phase"}, nil)
	moveBytesDesc = prometheus.NewDesc("tenantry_registry_move_source_bytes",
		"Bytes of the tenant's tables on the source, per running move.", []string{"operation"}, nil)
)

// scrapeTimeout bounds the queries of one scrape: a slow database must not
// hold the scrape up past Prometheus' own timeout.
const scrapeTimeout = 2 * time.Second

type operationsCollector struct{ db *pgxpool.Pool }

func (c operationsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- opTenantsDesc
	ch <- opRunningDesc
	ch <- movesDesc
	ch <- moveBytesDesc
}

func (c operationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	running := map[string]float64{"MigrateTenants": 0, move.Kind: 0}
	rows, err := c.db.Query(ctx, `SELECT id::text, kind, total, done, failed FROM tenantry_registry.operations WHERE state = 'RUNNING'`)
	if err == nil {
		for rows.Next() {
			var id, kind string
			var total, done, failed float64
			if rows.Scan(&id, &kind, &total, &done, &failed) != nil {
				break
			}
			running[kind]++
			if kind == move.Kind {
				continue
			}
			ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, total, id, kind, "total")
			ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, done, id, kind, "done")
			ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, failed, id, kind, "failed")
		}
		rows.Close()
	}
	for kind, n := range running {
		ch <- prometheus.MustNewConstMetric(opRunningDesc, prometheus.GaugeValue, n, kind)
	}
	phases := map[string]float64{string(move.Preparing): 0, string(move.Copying): 0, string(move.Fenced): 0, string(move.Switched): 0}
	rows, err = c.db.Query(ctx, `SELECT phase, count(*) FROM tenantry_registry.moves
		WHERE phase IN ('PREPARING', 'COPYING', 'FENCED', 'SWITCHED') GROUP BY phase`)
	if err == nil {
		for rows.Next() {
			var phase string
			var n float64
			if rows.Scan(&phase, &n) != nil {
				break
			}
			phases[phase] = n
		}
		rows.Close()
	}
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(movesDesc, prometheus.GaugeValue, n, phase)
	}
	rows, err = c.db.Query(ctx, `SELECT operation::text, source_bytes FROM tenantry_registry.moves
		WHERE phase IN ('PREPARING', 'COPYING', 'FENCED')`)
	if err == nil {
		for rows.Next() {
			var id string
			var n float64
			if rows.Scan(&id, &n) != nil {
				break
			}
			ch <- prometheus.MustNewConstMetric(moveBytesDesc, prometheus.GaugeValue, n, id)
		}
		rows.Close()
	}
}

// moveMetrics count the moves that ended and how long their fences were.
type moveMetrics struct {
	ended *prometheus.CounterVec
	fence prometheus.Histogram
}

func newMoveMetrics() *moveMetrics {
	return &moveMetrics{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantry_registry_moves_ended_total",
			Help: "Tenant moves this replica ended, by outcome (switched, cancelled, failed).",
		}, []string{"outcome"}),
		fence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tenantry_registry_move_fence_seconds",
			Help:    "How long a move fenced the tenant's writes, from the fence to the switch.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
}

func (m *moveMetrics) observe(mv *move.Move, outcome string) {
	m.ended.WithLabelValues(outcome).Inc()
	if d := mv.FenceDuration(); outcome == move.OutcomeSwitched && d > 0 {
		m.fence.Observe(d.Seconds())
	}
}
