package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/grpcerr"
)

// account is a user signed up through identity's API.
type account struct {
	tenant string
	email  string
}

// oneTenantAccounts lays out n accounts in one tenant.
func oneTenantAccounts(tenant string, n int) []account {
	accounts := make([]account, n)
	for i := range accounts {
		accounts[i] = account{tenant: tenant, email: fmt.Sprintf("one-%06d@bench.example.com", i)}
	}
	return accounts
}

// spreadAccounts lays out n accounts over tenants round robin: account i
// is in tenants[i % len(tenants)], so taking them in order visits every
// tenant before any tenant twice, and tenants differ by at most one
// account.
func spreadAccounts(tenants []string, n int) []account {
	accounts := make([]account, n)
	for i := range accounts {
		accounts[i] = account{tenant: tenants[i%len(tenants)], email: fmt.Sprintf("spread-%06d@bench.example.com", i)}
	}
	return accounts
}

// accountPool hands out accounts in order, so that every login of a
// measure uses an account no other login of it has used, until the pool
// runs out; then it starts over, and counts the reuse.
type accountPool struct {
	accounts []account
	next     atomic.Int64
}

func newAccountPool(accounts []account) *accountPool { return &accountPool{accounts: accounts} }

// take returns the next account and its sequence number, which also picks
// the connection (the source address) the login goes out on.
func (p *accountPool) take() (account, int) {
	i := int(p.next.Add(1) - 1)
	return p.accounts[i%len(p.accounts)], i
}

// reused returns how many accounts taken so far had been taken before.
func (p *accountPool) reused() int {
	return max(0, int(p.next.Load())-len(p.accounts))
}

// restart makes the next take start from the first account again. The
// accounts' rate limit budgets refill in seconds (login.account allows 20
// a minute, a burst of 40), so a measure minutes later may reuse them.
func (p *accountPool) restart() { p.next.Store(0) }

// signUp creates the account through identity's public API, as a person
// signing up would, with source address picked by i. Sign-ups have a
// ceiling per tenant (signup.tenant, at the tenant's login ceiling's rate:
// 50 a second, 250 at once, by default): a sign-up it refuses waits as
// its RetryInfo says and is sent again, so the sign-up throughput is at
// most that ceiling. (The per-address sign-up limit is raised out of the
// way when identity starts: see startIdentity.)
func signUp(ctx context.Context, cs identityConns, i int, a account, password string) error {
	ctx, cancel := context.WithTimeout(withTenant(ctx, a.tenant), callTimeout)
	defer cancel()
	for {
		_, err := cs.pick(i).auth.SignUp(ctx, &identityv1.SignUpRequest{
			Email: a.email, Password: password, DisplayName: "Bench user",
		})
		if err == nil {
			return nil
		}
		st := status.Convert(err)
		wait, ok := grpcerr.RetryDelay(st)
		if st.Code() != codes.ResourceExhausted || !ok {
			return fmt.Errorf("sign up %s in %s: %w", a.email, a.tenant, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("sign up %s in %s: refused by a rate limit (%w) until %w", a.email, a.tenant, err, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// login logs the account in and checks the answer.
func login(ctx context.Context, c identityConn, a account, password string) (*identityv1.LoginResponse, error) {
	resp, err := c.auth.Login(withTenant(ctx, a.tenant), &identityv1.LoginRequest{Email: a.email, Password: password})
	if err != nil {
		return nil, fmt.Errorf("log in %s in %s: %w", a.email, a.tenant, err)
	}
	if resp.GetAccessToken() == "" || resp.GetRefreshToken() == "" || resp.GetUser().GetEmail() != a.email {
		return nil, fmt.Errorf("log in %s in %s: the answer lacks tokens or names user %q", a.email, a.tenant, resp.GetUser().GetEmail())
	}
	return resp, nil
}
