package server

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/sessioncache"
	"tenantry.dev/platform/metrics"
)

// identityMetrics are identity's own metrics, beside those every service
// has (calls, HTTP requests, pools, the runtime): logins by method and
// outcome, mail delivery attempts and the outbox backlog, and the session
// cache. The packages they describe know nothing of Prometheus: account and
// mail call the hooks wired here, and the cache and the outboxes are read
// when /metrics is scraped.
//
// Every label is bounded by construction: methods, outcomes and results are
// the packages' own constants, placements are configured. No series names a
// tenant: the metrics package has no top-N or opt-in mechanism for one, and
// a tenant label would grow with the fleet.
type identityMetrics struct {
	logins       *prometheus.CounterVec
	mailAttempts *prometheus.CounterVec
}

// newIdentityMetrics makes the counters the hooks feed; register adds them
// to a registry, when metrics are on.
func newIdentityMetrics() *identityMetrics {
	m := &identityMetrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_logins_total",
			Help: "Logins by method (password, federated, email_code, mfa: the second step) and outcome (success; challenged: the password was right, a second factor is asked for; failure: refused credentials, code, account or identity; rate_limited; error: identity could not decide).",
		}, []string{"method", "outcome"}),
		mailAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_mail_delivery_attempts_total",
			Help: "Mail delivery attempts recorded in the outbox, by result (sent; retry: failed, tried again later; gave_up: failed for good, the mail stays unsent).",
		}, []string{"result"}),
	}
	// Every series exists from the start, at zero, so that rates and
	// alerts work before the first event. Federated logins meet no rate
	// limit.
	for _, o := range []account.LoginOutcome{account.LoginSucceeded, account.LoginRefused, account.LoginRateLimited, account.LoginErrored} {
		m.logins.WithLabelValues(string(account.LoginPassword), string(o))
		m.logins.WithLabelValues(string(account.LoginMFA), string(o))
		m.logins.WithLabelValues(string(account.LoginEmailCode), string(o))
		m.logins.WithLabelValues(string(account.LoginPasskey), string(o))
		if o != account.LoginRateLimited {
			m.logins.WithLabelValues(string(account.LoginFederated), string(o))
		}
	}
	m.logins.WithLabelValues(string(account.LoginPassword), string(account.LoginChallenged))
	m.logins.WithLabelValues(string(account.LoginEmailCode), string(account.LoginChallenged))
	for _, r := range []mail.Attempt{mail.AttemptSent, mail.AttemptRetry, mail.AttemptGaveUp} {
		m.mailAttempts.WithLabelValues(string(r))
	}
	return m
}

// login is account.Config.OnLogin.
func (m *identityMetrics) login(method account.LoginMethod, outcome account.LoginOutcome) {
	m.logins.WithLabelValues(string(method), string(outcome)).Inc()
}

// mailAttempt is mail.WorkerOptions.OnAttempt.
func (m *identityMetrics) mailAttempt(a mail.Attempt) {
	m.mailAttempts.WithLabelValues(string(a)).Inc()
}

// register adds identity's metrics to reg: the counters, the outbox backlog
// of each placement, and the session cache (nil when it is off).
func (m *identityMetrics) register(reg *metrics.Registry, outboxes map[string]*pgxpool.Pool, sessions *sessioncache.Cache) {
	reg.MustRegister(m.logins, m.mailAttempts, &outboxCollector{pools: outboxes})
	if sessions != nil {
		reg.MustRegister(sessionCacheCollector{sessions})
	}
}

// outboxReadEvery bounds how often a scrape reads the outboxes: a scraper
// (or anyone, where /metrics is on the public HTTP port) asking more often
// gets the last reading, so that scrapes cannot load the databases.
const outboxReadEvery = 5 * time.Second

// outboxReadTimeout bounds one placement's reading; a placement that does
// not answer in time has no backlog series in that scrape, and the other
// metrics are served regardless.
const outboxReadTimeout = 2 * time.Second

var (
	outboxWaitingDesc = prometheus.NewDesc("identity_mail_outbox_waiting",
		"Mails in the placement's outbox waiting to be sent (due, or waiting to be retried; not those given up on).",
		[]string{"placement"}, nil)
	outboxOldestDesc = prometheus.NewDesc("identity_mail_outbox_oldest_waiting_seconds",
		"How long the oldest mail waiting in the placement's outbox has waited (0 when none waits).",
		[]string{"placement"}, nil)
)

// outboxCollector reads each placement's outbox backlog at scrape time, at
// most once every outboxReadEvery.
type outboxCollector struct {
	pools map[string]*pgxpool.Pool

	mu     sync.Mutex
	readAt time.Time
	last   map[string]mail.Backlog // placements read successfully
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxWaitingDesc
	ch <- outboxOldestDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.readAt) >= outboxReadEvery {
		c.last = make(map[string]mail.Backlog, len(c.pools))
		for name, pool := range c.pools {
			ctx, cancel := context.WithTimeout(context.Background(), outboxReadTimeout)
			b, err := mail.ReadBacklog(ctx, pool)
			cancel()
			if err == nil {
				c.last[name] = b
			}
		}
		c.readAt = time.Now()
	}
	for name, b := range c.last {
		ch <- prometheus.MustNewConstMetric(outboxWaitingDesc, prometheus.GaugeValue, float64(b.Waiting), name)
		ch <- prometheus.MustNewConstMetric(outboxOldestDesc, prometheus.GaugeValue, b.OldestAge.Seconds(), name)
	}
}

var (
	cacheLookupsDesc = prometheus.NewDesc("identity_session_cache_lookups_total",
		"Session cache lookups by result: hit (answered from memory) or miss (not cached, too old, or the cache offline: a database read).",
		[]string{"result"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("identity_session_cache_entries",
		"Entries held by the session cache, by kind (session, user).",
		[]string{"kind"}, nil)
	cacheOnlineDesc = prometheus.NewDesc("identity_session_cache_online",
		"1 while the session cache is in use, 0 while a placement's notification listener is down.",
		nil, nil)
)

// sessionCacheCollector reads the session cache's counts at scrape time.
type sessionCacheCollector struct{ c *sessioncache.Cache }

func (c sessionCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- cacheEntriesDesc
	ch <- cacheOnlineDesc
}

func (c sessionCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Sessions), "session")
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Users), "user")
	online := 0.0
	if st.Online {
		online = 1
	}
	ch <- prometheus.MustNewConstMetric(cacheOnlineDesc, prometheus.GaugeValue, online)
}
