package server

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/tenant-registry/internal/tenant"
)

var stateToProto = map[tenant.State]registryv1.Tenant_State{
	tenant.Provisioning: registryv1.Tenant_STATE_PROVISIONING,
	tenant.Active:       registryv1.Tenant_STATE_ACTIVE,
	tenant.Suspended:    registryv1.Tenant_STATE_SUSPENDED,
	tenant.Deleted:      registryv1.Tenant_STATE_DELETED,
}

var matchToProto = map[tenant.Match]registryv1.ResolveTenantResponse_Match{
	tenant.MatchDomain:    registryv1.ResolveTenantResponse_MATCH_DOMAIN,
	tenant.MatchSubdomain: registryv1.ResolveTenantResponse_MATCH_SUBDOMAIN,
	tenant.MatchSlug:      registryv1.ResolveTenantResponse_MATCH_SLUG,
	tenant.MatchUID:       registryv1.ResolveTenantResponse_MATCH_UID,
}

// toProto converts a tenant for the wire.
func toProto(t *tenant.Tenant) *registryv1.Tenant {
	if t == nil {
		return nil
	}
	p := &registryv1.Tenant{
		Name:        tenantname.TenantName(t.Slug),
		Uid:         t.UID,
		Slug:        t.Slug,
		DisplayName: t.DisplayName,
		State:       stateToProto[t.State],
		Schema:      t.Schema,
		Placement:   t.Placement,
		Labels:      t.Labels,
		CreateTime:  timestamp(t.CreateTime),
		UpdateTime:  timestamp(t.UpdateTime),
		DeleteTime:  timestamp(t.DeleteTime),
		PurgeTime:   timestamp(t.PurgeTime),
		Etag:        t.Etag(),
		Revision:    t.Revision,
	}
	if len(t.Domains) > 0 {
		p.Domains = make([]*registryv1.Domain, len(t.Domains))
		for i, d := range t.Domains {
			p.Domains[i] = &registryv1.Domain{Host: d.Host, Primary: d.Primary}
		}
	}
	return p
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
