// Package authn authenticates gRPC callers by bearer token and authorizes
// each call by method.
//
// A caller sends "authorization: Bearer <token>". An Authenticator turns the
// token into a Principal, whose role a Policy checks against the full method
// name. The Guard puts these together as server interceptors:
//
//	static, err := authn.NewStaticTokens(authn.Credential{Role: "operator", Token: tok})
//	guard, err := authn.NewGuard(authn.Policy{
//		"/tenantry.registry.v1.TenantService/CreateTenant": {"operator"},
//	}, static)
//
// The Guard fails closed: a method that the policy does not list is denied
// to every role. Only methods marked public skip authentication; health
// checks and server reflection are public by default so that probes and
// grpcurl list/describe work without credentials.
//
// Authenticators can be chained (Chain), so that a service can accept the
// static operator tokens first and then its own kind of token.
//
// Tokens are secrets: this package never logs them, never puts them in
// errors, and keeps only SHA-256 digests of the static ones.
package authn
