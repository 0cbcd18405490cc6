package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"

	"tenantry.dev/platform/benchkit"
)

// currentUserPath is identity's REST route for AuthService.GetCurrentUser.
const currentUserPath = "/v1/auth/me"

// restCurrentUserLoad is GET /v1/auth/me over keep-alive HTTP/1.1 on the
// tenant's host, worker w sending the access token of chains[w] as an app
// does on start, as GetCurrentUser over gRPC does in sessionRun. The answer
// must be 200 and name the chain's account, as the gRPC answer must.
func (b *bench) restCurrentUserLoad(chains []*sessionChain) (benchkit.CallFunc, error) {
	if len(chains) == 0 {
		return nil, errors.New("no sessions to ask about")
	}
	hosts := map[string]*tenantHTTP{}
	for _, ch := range chains {
		if hosts[ch.account.tenant] != nil {
			continue
		}
		th, err := newTenantHTTP(b.identity.httpAddr, ch.account.tenant)
		if err != nil {
			return nil, err
		}
		hosts[ch.account.tenant] = th
	}
	// Every tenantHTTP dials identity's one address: one client serves
	// them all, with an idle connection for each worker (HTTP/1.1 carries
	// one call at a time on a connection).
	client := hosts[chains[0].account.tenant].client(len(chains))
	return func(ctx context.Context, w int, _ *rand.Rand) error {
		ch := chains[w]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, hosts[ch.account.tenant].issuer+currentUserPath, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+ch.access)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", currentUserPath, err)
		}
		// Read to its end, so that the connection is reused.
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: read the answer: %w", currentUserPath, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %.200s", currentUserPath, resp.Status, body)
		}
		var me struct {
			User struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		if err := json.Unmarshal(body, &me); err != nil {
			return fmt.Errorf("GET %s: decode the answer: %w", currentUserPath, err)
		}
		if me.User.Email != ch.account.email {
			return fmt.Errorf("GET %s: got user %q, want %q", currentUserPath, me.User.Email, ch.account.email)
		}
		return nil
	}, nil
}
