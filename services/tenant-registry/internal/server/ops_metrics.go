package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tenantry.dev/tenant-registry/internal/move"
	"tenantry.dev/tenant-registry/internal/store"
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

// progressReader reads the long-running work's progress (the store).
type progressReader interface {
	Progress(ctx context.Context) ([]store.RunningOperation, []store.RunningMove, error)
}

type operationsCollector struct{ st progressReader }

func (c operationsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- opTenantsDesc
	ch <- opRunningDesc
	ch <- movesDesc
	ch <- moveBytesDesc
}

func (c operationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ops, moves, err := c.st.Progress(ctx)
	if err != nil {
		return // a scrape without these series says the database did not answer
	}
	running := map[string]float64{"MigrateTenants": 0, move.Kind: 0}
	for _, o := range ops {
		running[o.Kind]++
		if o.Kind == move.Kind {
			continue
		}
		ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, float64(o.Total), o.ID, o.Kind, "total")
		ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, float64(o.Done), o.ID, o.Kind, "done")
		ch <- prometheus.MustNewConstMetric(opTenantsDesc, prometheus.GaugeValue, float64(o.Failed), o.ID, o.Kind, "failed")
	}
	for kind, n := range running {
		ch <- prometheus.MustNewConstMetric(opRunningDesc, prometheus.GaugeValue, n, kind)
	}
	phases := map[string]float64{string(move.Preparing): 0, string(move.Copying): 0, string(move.Fenced): 0, string(move.Switched): 0}
	for _, m := range moves {
		phases[m.Phase]++
		if m.Phase != string(move.Switched) {
			ch <- prometheus.MustNewConstMetric(moveBytesDesc, prometheus.GaugeValue, float64(m.SourceBytes), m.Operation)
		}
	}
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(movesDesc, prometheus.GaugeValue, n, phase)
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
