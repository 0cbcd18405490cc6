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
// A call is authorized when it begins. A long server stream that must not
// outlive its caller's rights calls Recheck before it sends more: the same
// token is authenticated again and the method's policy applied again, so a
// caller logged out, demoted or disabled since, or whose token expired,
// gets the error a new call would get.
//
// Tokens are secrets: this package never logs them, never puts them in
// errors, keeps a caller's token only in its call's context (for Recheck,
// as long as the call's metadata holds it anyway), and keeps only SHA-256
// digests of the static ones.
package authn
