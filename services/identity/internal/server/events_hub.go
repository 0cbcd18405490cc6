package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/identity/internal/store"
	"tenantry.dev/identity/internal/webhook"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/pglisten"
)

// webhookMessageID is the webhook-id of an event, shown with deliveries.
var webhookMessageID = webhook.MessageID

// eventHub tells this replica's account event watches that their tenant
// committed events: it listens (LISTEN, one connection per placement) to
// store.AccountEventsChannel, whose payload is the tenant's schema, and
// pokes the watches of that schema. A poke carries no event: the watch
// reads its tenant's events after the last it sent, so a poke lost or
// doubled costs nothing but a read.
type eventHub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newEventHub() *eventHub {
	return &eventHub{subs: map[string]map[chan struct{}]struct{}{}}
}

func (h *eventHub) subscribe(schema string) chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[schema] == nil {
		h.subs[schema] = map[chan struct{}]struct{}{}
	}
	h.subs[schema][ch] = struct{}{}
	return ch
}

func (h *eventHub) unsubscribe(schema string, ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[schema], ch)
	if len(h.subs[schema]) == 0 {
		delete(h.subs, schema)
	}
}

// poke wakes the watches of schema, or of every schema when it is "".
func (h *eventHub) poke(schema string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, chans := range h.subs {
		if schema != "" && s != schema {
			continue
		}
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// run listens on every placement until ctx ends. A new connection pokes
// every watch: notifications sent while none listened are lost.
func (h *eventHub) run(ctx context.Context, pools []*pgxpool.Pool, logger *slog.Logger) {
	var wg sync.WaitGroup
	for _, pool := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pglisten.Run(ctx, pool, pglisten.Options{
				Channel: store.AccountEventsChannel, What: "account event watch listener", Logger: logger,
				OnListen: func(context.Context) error { h.poke(""); return nil },
				OnNotify: func(_ context.Context, schema string) error { h.poke(schema); return nil },
			})
		}()
	}
	wg.Wait()
}

// servedTenants returns the tenants whose schema identity serves (active
// or suspended), as the registry's snapshot has them now; none before the
// snapshot is in. The webhook worker visits them.
func (a *App) servedTenants() []tenancy.Tenant {
	if !a.resolver.Ready() {
		return nil
	}
	var tenants []tenancy.Tenant
	for _, t := range a.resolver.All() {
		if t.State == tenancy.Active || t.State == tenancy.Suspended {
			tenants = append(tenants, t)
		}
	}
	return tenants
}
