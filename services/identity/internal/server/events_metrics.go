package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"tenantry.dev/identity/internal/webhook"
)

// webhookMetrics counts webhook delivery attempts by result, fed by the
// webhook worker whether or not metrics are served.
type webhookMetrics struct {
	attempts *prometheus.CounterVec
}

func newWebhookMetrics() *webhookMetrics {
	m := &webhookMetrics{attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "identity_webhook_delivery_attempts_total",
		Help: "Webhook delivery attempts recorded, by result (delivered; retry: failed, tried again after a backoff; abandoned: failed for good after the last attempt).",
	}, []string{"result"})}
	// Every result is a series from the start, so a rate over a failure
	// that never happened yet is 0, not absent.
	for _, r := range []webhook.Attempt{webhook.AttemptDelivered, webhook.AttemptRetry, webhook.AttemptAbandoned} {
		m.attempts.WithLabelValues(string(r))
	}
	return m
}

// attempt is webhook.Options.OnAttempt.
func (m *webhookMetrics) attempt(a webhook.Attempt) { m.attempts.WithLabelValues(string(a)).Inc() }
