// Package ratelimit limits how often clients may try sensitive identity
// operations — logging in, asking for a password reset, asking for a
// verification message — with limits that hold across every replica of the
// identity service, because they live in PostgreSQL.
//
// # Philosophy: slow attackers down, never hand them a lockout
//
// A limit on an account is also a weapon against its owner: whoever can
// exhaust it can keep the owner out. So the presets ([LoginChecks],
// [PasswordResetChecks], [VerificationChecks], [SignUpChecks], ...) combine
// limits of different scopes, and a request must pass all of them:
//
//   - a tight limit per account AND client address, which is what an attacker
//     guessing from one address runs into;
//   - a looser limit per account, several times the tight one, which bounds
//     a distributed attack: an attacker needs several addresses before the
//     owner, at their own address, is even slowed down;
//   - a limit per client address across accounts, against one address
//     trying many accounts (credential stuffing), generous enough for offices
//     behind one NAT;
//   - a ceiling per tenant, far above organic peaks, which caps what a flood
//     costs (password hashing, mail) rather than catching attackers; reaching
//     it deserves an alert. The login ceiling's rate is each tenant's own
//     setting (a large tenant's legitimate peak may need more than the
//     default), which the caller passes to [LoginChecks].
//
// That layering only works if a refused request costs nothing: when the tight
// limit refuses a flood, the flood must not go on draining the account's
// looser limit, or one address could lock the owner out after all. Hence
// [Limiter.AllowAll] is all-or-nothing: a request is allowed only if every
// limit allows it, and then every limit is charged; when any limit refuses,
// none is charged. In particular a refusal never pushes a limit's next free
// slot further away — only allowed requests do — so a flood of refused
// requests, however long, does not extend anyone's wait.
//
// Account scopes use the identifier the client submitted (normalised), not
// the account it resolves to, so unknown accounts are limited exactly like
// known ones and limits reveal nothing about which accounts exist.
//
// # Algorithm: GCRA
//
// Each limit is a generic cell rate algorithm (GCRA), the token bucket
// expressed as one timestamp per key: the theoretical arrival time (TAT), the
// moment at which the bucket would be full again if nothing else arrived. A
// limit of Rate events Per duration has an emission interval T = Per/Rate;
// with a burst of B, a request at time now is allowed when
//
//	max(TAT, now) + T <= now + B·T
//
// and then TAT becomes max(TAT, now) + T. A refused request leaves TAT alone
// and may retry after max(TAT, now) + T − B·T − now. A key whose TAT has
// passed is indistinguishable from a key never seen, which is why rows can be
// deleted once expired ([Limiter.Cleanup]) and why changing a limit's numbers
// takes effect at once without migrating anything.
//
// # Storage and atomicity
//
// The state is one row per key in tenantry_identity.rate_limits, a single
// table shared by all tenants (a table per tenant schema would multiply
// catalog entries for no benefit). The table is UNLOGGED: its writes skip the
// write-ahead log, which matters for a table written on every login attempt,
// and a crash or a failover to a standby, which empties unlogged tables,
// only resets counters — every client gets a fresh budget, which is safe.
//
// Every decision uses the database's clock, never the replica's, so replicas
// whose clocks disagree still agree on every decision.
//
// A lone INSERT ... ON CONFLICT DO UPDATE decides row by row, so it cannot
// make one all-or-nothing decision over several keys: a row it has not
// reached yet can change under it. So each call sends, in one round trip, one
// READ COMMITTED transaction of two statements. The first takes a
// transaction-scoped advisory lock per key, in a fixed order so that
// concurrent callers cannot deadlock; advisory locks exist for keys that
// have no row yet, which row locks do not. The second, whose snapshot is taken
// once the locks are held and so sees every committed charge, evaluates GCRA
// for every key in one statement — reads the rows, decides, and writes the
// new TATs with INSERT ... ON CONFLICT DO UPDATE ... RETURNING only when
// every key allows. A refused request writes nothing, so a flood costs reads
// and lock waits but no table churn. Every writer of a key holds its
// advisory lock, which is the invariant the decision relies on. Cleanup
// takes no advisory lock: it deletes only rows that have refilled, and a
// decision writes the new TAT whole rather than adjusting the stored one, so
// a row deleted while a decision runs changes nothing.
//
// # Keys
//
// A key is "<limit name>:<tenant>:<scope>", where the tenant is kept readable
// when it is a plain slug and the scope (an account identifier, a client
// address, or both) is always replaced by the hex SHA-256 of its parts: the
// table never holds an email address, a user name or an IP address as the
// client sent it. Hashing is pseudonymisation, not anonymisation — a guessed
// email can be hashed and looked up — but rows live only until their limit
// refills.
package ratelimit
