package tenancy

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"tenantry.dev/platform/fault"
)

// Metadata keys naming the tenant of a call: a slug from internal callers
// and grpcurl, or the request's host as a REST gateway saw it. A gateway
// must set x-tenant-host itself and never pass a client's through.
const (
	MetadataTenant     = "x-tenant"
	MetadataTenantHost = "x-tenant-host"
)

// Named is what a call's metadata says about its tenant.
type Named struct {
	Slug string // from x-tenant
	Host string // from x-tenant-host
}

// None reports whether the call names no tenant at all.
func (n Named) None() bool { return n.Slug == "" && n.Host == "" }

// NamedIn reads the tenant a call names from its incoming metadata.
func NamedIn(ctx context.Context) (Named, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return NamedInMetadata(md)
}

// NamedInMetadata reads the tenant md names. A key sent more than once is
// refused (METADATA_REPEATED) rather than guessed at: a proxy and a client
// disagreeing about the tenant must not be settled by whichever value
// comes first.
func NamedInMetadata(md metadata.MD) (Named, error) {
	slug, err := singleValue(md, MetadataTenant)
	if err != nil {
		return Named{}, err
	}
	host, err := singleValue(md, MetadataTenantHost)
	if err != nil {
		return Named{}, err
	}
	return Named{Slug: slug, Host: host}, nil
}

// SingleValue returns the one value of key in md, or "" when it is absent;
// a key sent more than once is INVALID_ARGUMENT METADATA_REPEATED.
func SingleValue(md metadata.MD, key string) (string, error) { return singleValue(md, key) }

func singleValue(md metadata.MD, key string) (string, error) {
	v := md.Get(key)
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(v[0]), nil
	default:
		return "", fault.Invalid(key, "METADATA_REPEATED",
			"the metadata %q was sent %d times; send it once", key, len(v))
	}
}

// Resolve returns the tenant n names, in whatever state: by slug, by host,
// or by both when they agree (naming two tenants is INVALID_ARGUMENT
// TENANT_AMBIGUOUS rather than settled by whichever is looked at first).
// Naming none is INVALID_ARGUMENT TENANT_REQUIRED.
func (r *Resolver) Resolve(ctx context.Context, n Named) (Tenant, error) {
	switch {
	case n.Slug != "" && n.Host != "":
		bySlug, err := r.BySlug(ctx, n.Slug)
		if err != nil {
			return Tenant{}, err
		}
		t, err := r.ByHost(ctx, n.Host)
		if err != nil {
			return Tenant{}, err
		}
		if t.UID != bySlug.UID {
			return Tenant{}, fault.Invalid(MetadataTenant, "TENANT_AMBIGUOUS",
				"the metadata %s and %s name different tenants; send one of them", MetadataTenant, MetadataTenantHost)
		}
		return t, nil
	case n.Slug != "":
		return r.BySlug(ctx, n.Slug)
	case n.Host != "":
		return r.ByHost(ctx, n.Host)
	}
	return Tenant{}, fault.Invalid(MetadataTenant, "TENANT_REQUIRED",
		"say which tenant this call is for: send the metadata 'x-tenant: <tenant slug>'")
}
