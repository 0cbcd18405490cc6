package server_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// scrape GETs identity's /metrics and parses it with Prometheus' own text
// parser.
func (s *system) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	resp, err := http.Get("http://" + s.identity.HTTPAddr().String() + "/metrics")
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(s.t, err, "the exposition does not parse")
	return families
}

// sample is the value of family's series with exactly labels (besides
// service="identity", which every series has), and whether there is one.
func sample(families map[string]*dto.MetricFamily, family string, labels map[string]string) (float64, bool) {
	f, ok := families[family]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if got["service"] != "identity" || len(got) != len(labels)+1 {
			continue
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// series names one series of the exposition.
type series struct {
	family string
	labels map[string]string
}

func logins(method, outcome string) series {
	return series{"identity_logins_total", map[string]string{"method": method, "outcome": outcome}}
}

func mailAttempts(result string) series {
	return series{"identity_mail_delivery_attempts_total", map[string]string{"result": result}}
}

var (
	outboxWaiting = series{"identity_mail_outbox_waiting", map[string]string{"placement": "default"}}
	outboxOldest  = series{"identity_mail_outbox_oldest_waiting_seconds", map[string]string{"placement": "default"}}
	cacheHits     = series{"identity_session_cache_lookups_total", map[string]string{"result": "hit"}}
	cacheMisses   = series{"identity_session_cache_lookups_total", map[string]string{"result": "miss"}}
	cacheSessions = series{"identity_session_cache_entries", map[string]string{"kind": "session"}}
	cacheUsers    = series{"identity_session_cache_entries", map[string]string{"kind": "user"}}
	cacheOnline   = series{"identity_session_cache_online", map[string]string{}}
	tenantHits    = series{"tenantry_tenant_cache_lookups_total", map[string]string{"result": "hit"}}
	tenantsHeld   = series{"tenantry_tenant_cache_tenants", map[string]string{}}
)

func (s *system) value(families map[string]*dto.MetricFamily, x series) float64 {
	s.t.Helper()
	v, ok := sample(families, x.family, x.labels)
	require.True(s.t, ok, "no %s%v in the exposition", x.family, x.labels)
	return v
}

func TestIdentityMetricsCountLoginsMailAndTheSessionCache(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	registrytestEventually(t, "the session cache to be online", func() bool { return s.value(s.scrape(), cacheOnline) == 1 })
	before := s.scrape()
	for _, x := range []series{
		logins("password", "success"), logins("password", "failure"), logins("password", "rate_limited"), logins("password", "error"),
		logins("federated", "success"), logins("federated", "failure"), logins("federated", "error"),
		mailAttempts("sent"), mailAttempts("retry"), mailAttempts("gave_up"),
	} {
		require.Zero(t, s.value(before, x), "%s%v starts at zero", x.family, x.labels)
	}
	_, ok := sample(before, "identity_logins_total", map[string]string{"method": "federated", "outcome": "rate_limited"})
	require.False(t, ok, "federated logins meet no rate limit: no series for it")

	// Password logins: the two admins' (for the federation below), ann's,
	// then wrong passwords for ann until the limit of one account at one
	// address refuses one.
	f := setUpFederation(t, s, true)
	s.signUpAndLogin("alpha", "ann@alpha.example")
	wrong := 0
	for {
		_, err := s.auth.Login(in("alpha"), loginRequest("ann@alpha.example", "not the password at all"))
		if requireCodeIs(err, codes.ResourceExhausted) {
			break
		}
		requireCode(t, err, codes.Unauthenticated)
		wrong++
		require.Less(t, wrong, 40, "the limit never refused")
	}

	// Federated logins: carol signs up through beta (whose login page is a
	// password login there), dan's unverified email is refused.
	f.betaUser(t, "carol@beta.example", true)
	resp, body := f.signInWithBeta(t, s.newBrowser(), "carol@beta.example")
	require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
	f.betaUser(t, "dan@beta.example", false)
	resp, body = f.signInWithBeta(t, s.newBrowser(), "dan@beta.example")
	require.Equal(t, "/login", resp.Request.URL.Path, body)

	// The session cache: bob's token checked twice, the second time from
	// memory.
	bob := s.signUpAndLogin("alpha", "bob@alpha.example")
	for range 2 {
		_, err := s.auth.GetCurrentUser(in("alpha", bob.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
	}

	// Mail: everything so far was delivered; then the server refuses for
	// a while, and a reset mail waits in the outbox for its retry.
	registrytestEventually(t, "every mail so far to be delivered", func() bool {
		return s.value(s.scrape(), outboxWaiting) == 0
	})
	s.smtp.Reject(451, 0)
	_, err := s.auth.RequestPasswordReset(in("alpha"), &identityv1.RequestPasswordResetRequest{Email: "ann@alpha.example"})
	require.NoError(t, err)
	registrytestEventually(t, "a failed delivery to be counted and its mail to wait", func() bool {
		after := s.scrape()
		return s.value(after, mailAttempts("retry")) >= 1 && s.value(after, outboxWaiting) >= 1
	})

	after := s.scrape()
	delta := func(x series) float64 { return s.value(after, x) - s.value(before, x) }
	// The admins, ann, carol and dan at beta's login page, bob.
	passwordSuccesses := 2.0 + 1 + 2 + 1
	require.Equal(t, passwordSuccesses, delta(logins("password", "success")))
	require.Equal(t, float64(wrong), delta(logins("password", "failure")))
	require.Equal(t, 1.0, delta(logins("password", "rate_limited")))
	require.Zero(t, delta(logins("password", "error")))
	require.Equal(t, 1.0, delta(logins("federated", "success")))
	require.Equal(t, 1.0, delta(logins("federated", "failure")))
	require.Zero(t, delta(logins("federated", "error")))

	require.GreaterOrEqual(t, delta(mailAttempts("sent")), 4.0, "the invitations and the verification mails were sent")
	require.GreaterOrEqual(t, delta(mailAttempts("retry")), 1.0)
	require.Zero(t, delta(mailAttempts("gave_up")))
	require.GreaterOrEqual(t, s.value(after, outboxWaiting), 1.0)
	require.GreaterOrEqual(t, s.value(after, outboxOldest), 0.0)

	require.GreaterOrEqual(t, delta(cacheHits), 1.0, "the second check is answered from memory")
	require.GreaterOrEqual(t, delta(cacheMisses), 1.0, "the first check reads the database")
	require.GreaterOrEqual(t, s.value(after, cacheSessions), 1.0)
	require.GreaterOrEqual(t, s.value(after, cacheUsers), 1.0)
	require.Equal(t, 1.0, s.value(after, cacheOnline))
	// The tenant cache (kit/tenancy) answered the calls' tenants from
	// memory, holding both tenants from the registry's change stream.
	require.GreaterOrEqual(t, delta(tenantHits), 10.0)
	require.Equal(t, 2.0, s.value(after, tenantsHeld))

	// No series names a tenant, by slug or host.
	for name, fam := range after {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				require.NotEqual(t, "tenant", l.GetName(), name)
				for _, slug := range []string{"alpha", "beta"} {
					require.NotEqual(t, slug, l.GetValue(), "%s carries a tenant in %s", name, l.GetName())
					require.NotContains(t, l.GetValue(), slug+".localhost", "%s carries a tenant in %s", name, l.GetName())
				}
			}
		}
	}
}
