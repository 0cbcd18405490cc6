package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// restLoginPath is identity's REST route for AuthService.Login.
const restLoginPath = "/v1/auth:login"

// restClients call identity's REST gateway as browsers and API clients
// would: JSON over keep-alive HTTP/1.1 on loopback TCP, the tenant named by
// the Host header. There is one client per source address, its sockets
// bound to that address, so that, as with identityConns, identity's
// per-address rate limits see each as a distinct client.
type restClients struct {
	base    string // http://host:port of the gateway
	port    string // the gateway's port, for Host headers
	clients []*http.Client
}

// newRESTClients returns one client per source address (nil: the kernel's
// choice, 127.0.0.1) of the gateway at addr, each keeping up to idle
// connections open, so that callers calling back to back reuse them
// instead of opening one per call.
func newRESTClients(addr string, sources []netip.Addr, idle int) (*restClients, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("identity's HTTP address %q: %w", addr, err)
	}
	rc := &restClients{base: "http://" + addr, port: port}
	for _, src := range sources {
		d := &net.Dialer{Timeout: callTimeout, KeepAlive: 30 * time.Second}
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		rc.clients = append(rc.clients, &http.Client{
			Transport: &http.Transport{
				DialContext:         d.DialContext,
				MaxIdleConns:        idle,
				MaxIdleConnsPerHost: idle,
				IdleConnTimeout:     time.Minute,
			},
			Timeout: callTimeout,
		})
	}
	return rc, nil
}

// close closes the idle connections; it is safe on nil.
func (rc *restClients) close() {
	if rc == nil {
		return
	}
	for _, c := range rc.clients {
		c.CloseIdleConnections()
	}
}

// pick returns the client for call i, round robin.
func (rc *restClients) pick(i int) *http.Client { return rc.clients[i%len(rc.clients)] }

// restLoginResponse is the part of a Login answer in JSON that is checked.
type restLoginResponse struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         struct {
		Email string `json:"email"`
	} `json:"user"`
}

// login logs the account in with POST /v1/auth:login on its tenant's host,
// from the source address picked by i, and checks the answer.
func (rc *restClients) login(ctx context.Context, i int, a account, password string) (restLoginResponse, error) {
	var out restLoginResponse
	body, err := json.Marshal(map[string]string{"email": a.email, "password": password})
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.base+restLoginPath, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Host = net.JoinHostPort(a.tenant+".localhost", rc.port)
	req.Header.Set("Content-Type", "application/json")
	resp, err := rc.pick(i).Do(req)
	if err != nil {
		return out, fmt.Errorf("REST log in %s in %s: %w", a.email, a.tenant, err)
	}
	// The body is read to its end so that the connection is reused.
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("REST log in %s in %s: %s: %s", a.email, a.tenant, resp.Status, msg)
		if resp.StatusCode == http.StatusTooManyRequests {
			// A rate-limit refusal, counted as such like gRPC's.
			err = status.Error(codes.ResourceExhausted, err.Error())
		}
		return out, err
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("REST log in %s in %s: decode the answer: %w", a.email, a.tenant, err)
	}
	if out.AccessToken == "" || out.RefreshToken == "" || out.User.Email != a.email {
		return out, fmt.Errorf("REST log in %s in %s: the answer lacks tokens or names user %q", a.email, a.tenant, out.User.Email)
	}
	return out, nil
}
