package accesstoken

import "github.com/prometheus/client_golang/prometheus"

var (
	lookupsDesc = prometheus.NewDesc("tenantry_access_token_cache_lookups_total",
		"Access tokens looked up among those already verified: found (hit), or verified now with the tenant's keys (miss).",
		[]string{"result"}, nil)
	entriesDesc = prometheus.NewDesc("tenantry_access_token_cache_entries", "Verified access tokens remembered.", nil, nil)
)

// Collector exposes v's cache of verified tokens to Prometheus, read at
// scrape time.
func Collector(v *Verifier) prometheus.Collector { return collector{v} }

type collector struct{ v *Verifier }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lookupsDesc
	ch <- entriesDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t := c.v.verified
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(t.hits.Load()), "hit")
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(t.misses.Load()), "miss")
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(t.len()))
}
