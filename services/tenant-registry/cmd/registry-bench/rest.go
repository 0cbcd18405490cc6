package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/benchkit"
)

// restClient calls the registry's REST gateway as an operator's HTTP
// tooling would: JSON over keep-alive HTTP/1.1 on loopback TCP, bearer
// token in the Authorization header.
type restClient struct {
	http     *http.Client
	base     string // http://host:port
	operator string
}

// newRESTClient returns a client of the gateway at addr that keeps up to
// conns idle connections to it, so that conns callers calling back to back
// each reuse a connection instead of opening one per call.
func newRESTClient(addr string, conns int, tok tokens) *restClient {
	transport := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
	}
	return &restClient{
		http:     &http.Client{Transport: transport, Timeout: callTimeout},
		base:     "http://" + addr,
		operator: tok.operator,
	}
}

func (c *restClient) close() { c.http.CloseIdleConnections() }

// restTenant is the part of a GetTenant answer in JSON that is checked.
type restTenant struct {
	Tenant struct {
		Name  string `json:"name"`
		Slug  string `json:"slug"`
		State string `json:"state"`
	} `json:"tenant"`
}

// getTenantLoad reads random targets' tenants with GET /v1/tenants/{slug}
// and checks each answer, as getTenantLoad does over gRPC.
func (c *restClient) getTenantLoad(targets []target) benchkit.CallFunc {
	active := registryv1.Tenant_STATE_ACTIVE.String()
	return func(ctx context.Context, _ int, rng *rand.Rand) error {
		if len(targets) == 0 {
			return errors.New("no tenants to get")
		}
		slug := targets[rng.IntN(len(targets))].slug
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/tenants/"+url.PathEscape(slug), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.operator)
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("GET /v1/tenants/%s: %w", slug, err)
		}
		// The body is read to its end so that the connection is reused.
		defer func() {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("GET /v1/tenants/%s: %s: %s", slug, resp.Status, body)
		}
		var got restTenant
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return fmt.Errorf("GET /v1/tenants/%s: decode the answer: %w", slug, err)
		}
		if t := got.Tenant; t.Slug != slug || t.Name != "tenants/"+slug || t.State != active {
			return fmt.Errorf("GET /v1/tenants/%s: got tenant %q (%q) in state %q, want it %s", slug, t.Slug, t.Name, t.State, active)
		}
		return nil
	}
}
