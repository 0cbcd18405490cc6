package tenancy

import "github.com/prometheus/client_golang/prometheus"

var (
	lookupsDesc = prometheus.NewDesc("tenantry_tenant_cache_lookups_total",
		"Tenant lookups by host or slug, by how they were answered: from the cache with a tenant (hit), from the cache as no tenant's (unknown), or by asking the registry (registry).",
		[]string{"result"}, nil)
	tenantsDesc = prometheus.NewDesc("tenantry_tenant_cache_tenants",
		"Tenants the cache holds (every tenant once the registry's change stream has sent its snapshot).", nil, nil)
)

// Collector exposes r's Stats to Prometheus, read at scrape time.
func Collector(r *Resolver) prometheus.Collector { return collector{r} }

type collector struct{ r *Resolver }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lookupsDesc
	ch <- tenantsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(s.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(s.Unknowns), "unknown")
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(s.Asked), "registry")
	ch <- prometheus.MustNewConstMetric(tenantsDesc, prometheus.GaugeValue, float64(s.Tenants))
}
