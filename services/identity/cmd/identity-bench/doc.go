// Command identity-bench starts the real Tenantry identity service and
// measures it:
//
//	identity-bench -registry-bin bin/tenant-registry -identity-bin bin/identity [-tenants 1000] [-duration 5s] [-rounds 3]
//
// It starts a throwaway PostgreSQL cluster with durable settings (package
// pgcluster, stopped with this process however it ends), runs the
// tenant-registry and identity binaries as child processes on one database
// (the registry creates tenant schemas there, identity fills them), talks
// to both over gRPC on loopback TCP as other services do (and to
// identity's REST gateway for one measure), and prints on
// stdout a Markdown table with the columns measure, value, unit, target
// and met. Progress and the services' warnings go to stderr; identity's
// info records (every call, and every mail, since no SMTP server is
// configured) are dropped. `make bench` runs it after registry-bench;
// `-tenants 50 -duration 1s` is a quick smoke run.
//
// The machine is shared and noisy, so throughput is only judged as a ratio
// against a baseline measured in the same run, in interleaved slices of at
// most a second (as registry-bench does), the ratio being the median over
// adjacent pairs of slices. The measures, in order:
//
//   - argon2id with identity's parameters (password.DefaultParams) in this
//     process (-hash-goroutines, GOMAXPROCS by default), against Login over
//     gRPC in one tenant (-login-clients, twice that by default: more calls
//     than identity's hash slots, so Login runs at its capacity);
//   - access-token verification by a caller holding the JWKS (each
//     tenant's fetched once with GetJwks), with golang-jwt on one goroutine, against bare
//     ed25519.Verify;
//   - RefreshSession and GetCurrentUser, each against grpc.health.v1 Check
//     on identity; then REST GET /v1/auth/me with the same access tokens
//     (keep-alive HTTP/1.1, the tenant in the Host header) against
//     GetCurrentUser over gRPC (issue 13; target ≥ 0.8);
//   - the one tenant's OpenID Provider over HTTP (issue 11), with OAuth
//     clients registered through OAuthClientService with the operator's
//     token: RS256 and EdDSA signatures in this process (the floor under
//     tokens); authorization_code exchanges at /oauth/token (codes
//     prepared beforehand by logged-in browsers through /oauth/authorize,
//     each with its PKCE verifier; only the exchanges are timed) and
//     refresh_token grants (a grant chain per client), each against
//     RefreshSession over gRPC; client_credentials grants per core of the
//     machine, RS256 against EdDSA; discovery, the JWKS and the gateway's
//     /healthz over keep-alive HTTP/1.1 against grpc.health.v1 Check over
//     gRPC;
//   - creating tenants through the registry up to -tenants, then the time
//     from starting identity to its "tenant schemas migrated" record, with
//     every schema new to it and then with all current;
//   - Login spread over every tenant against Login in one tenant;
//   - Login through identity's REST gateway (POST /v1/auth:login, the
//     tenant in the Host header, started on a free loopback port) against
//     Login over gRPC, both spread over every tenant, with the same
//     concurrency and source addresses;
//   - a login with a second factor (Login answering a challenge, then
//     VerifyMfa with the code of an authenticator app enrolled beforehand,
//     computed here with pquerna/otp as the user's app would) against a
//     password-only Login, each side with accounts of its own spread over
//     every tenant (issue 12; target ≥ 0.95).
//
// Identity's login rate limits stay as they are: every login of a measure
// uses its own account, and logins come from many loopback source
// addresses (127.0.0.2 and up, one connection each), since identity keys
// its per-address limits on the peer address. Sign-ups, which set the
// accounts up, are limited too: the per-address sign-up limit is raised
// out of the way (-signup-limit-per-address), and a sign-up refused by the
// tenant's sign-up ceiling waits as told and is sent again. A call refused
// by a limit counts as a failure and is reported.
//
// A measure that cannot be taken is printed as n/a with the reason below
// the table; nothing is estimated. The exit status is 0 when every measure
// was taken (met or not), 1 when some could not be, 2 for bad flags and 130
// when interrupted. The run stops after -budget (10 minutes) and reports what
// it has.
package main
