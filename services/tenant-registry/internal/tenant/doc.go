// Package tenant holds the rules of the tenant registry: the tenant type and
// its lifecycle (Manager), the in-memory resolution index kept coherent from
// the registry's change log (Index), and the background repair of half-done
// work (Reconciler). It knows nothing about gRPC or SQL: storage is the Store
// interface, implemented by package store.
package tenant
