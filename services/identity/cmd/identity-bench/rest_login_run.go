package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"tenantry.dev/platform/benchkit"
)

// restLoginRun measures Login through identity's REST gateway against the
// same call over gRPC, interleaved, with the same concurrency, spread over
// every tenant (one tenant alone would meet its login.tenant limit, 50 a
// second, since Login now runs faster than that). Both loads take their
// accounts from one pool, so that no account logs in twice in the measure,
// and rotate over the same source addresses.
func (b *bench) restLoginRun(ctx context.Context) error {
	pool := b.spreadPool
	if pool == nil {
		return errors.New("no accounts in every tenant: the many-tenants measure did not set them up")
	}
	// The accounts logged in once in the spread measure, each from one
	// source address; once more stays far inside login.account (burst 40)
	// and login.account_address (burst 10).
	pool.restart()

	b.log.Info("measuring Login over gRPC and over REST, interleaved",
		"clients", b.cfg.loginClients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
	meters := []benchkit.CPUMeter{b.identityCPU}
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.loginClients, Duration: b.cfg.duration, Warmup: b.warmup()},
		benchkit.Side{Call: b.loginLoad(pool), CPU: meters},
		benchkit.Side{Call: b.restLoginLoad(pool), CPU: meters})
	if err != nil {
		return err
	}
	if reused := pool.reused(); reused > 0 {
		b.tbl.Note("Login over REST and gRPC: %d logins reused an account of the %s signed up.", reused, benchkit.FormatCount(len(pool.accounts)))
	}
	for _, m := range []struct {
		s             benchkit.Series
		tps, p50, p99 string
		cpu           string
		what          string
	}{
		{c.Base, kGRPCLoginTPS, kGRPCLoginP50, kGRPCLoginP99, kGRPCLoginCPU, "Login over gRPC"},
		{c.Subject, kRESTLoginTPS, kRESTLoginP50, kRESTLoginP99, kRESTLoginCPU, "REST POST " + restLoginPath},
	} {
		total := m.s.Total()
		if total.Calls == 0 {
			return fmt.Errorf("no %s succeeded: %w", m.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[kRESTLoginRatio] = true
			b.tbl.Note("%s: %v", m.what, err)
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(m.s.MedianThroughput()))
		b.tbl.Info(m.p50, benchkit.FormatMillis(total.Latency.Percentile(0.50)))
		b.tbl.Info(m.p99, benchkit.FormatMillis(total.Latency.Percentile(0.99)))
		b.cpuRow(m.cpu, m.s, 0, time.Millisecond)
	}
	b.tbl.Set(kRESTLoginRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minRESTVsGRPC && b.clean(kRESTLoginRatio)))
	return b.restLoginVsHash(ctx, pool)
}

// restLoginVsHash measures REST logins spread over every tenant against
// the bare argon2id verify rate in this process (identity's parameters and
// GOGC, one goroutine per core), interleaved, with 2 and then 4 clients
// (issue 13): with 2, each slot of identity's hasher waits while its
// caller's previous login does its database work and travels back.
func (b *bench) restLoginVsHash(ctx context.Context, pool *accountPool) error {
	if b.hashCall == nil {
		return errors.New("no argon2id baseline: the login measure did not run")
	}
	for _, m := range []struct {
		clients         int
		tps, ratio, cpu string
	}{
		{2, kRESTLogin2TPS, kRESTLogin2Ratio, kRESTLogin2CPU},
		{4, kRESTLogin4TPS, kRESTLogin4Ratio, kRESTLogin4CPU},
	} {
		pool.restart()
		b.log.Info("measuring argon2id in-process and REST Login spread over every tenant, interleaved",
			"hash_goroutines", b.cfg.hashWorkers, "clients", m.clients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
		c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: m.clients, Duration: b.cfg.duration, Warmup: b.warmup()},
			benchkit.Side{Call: b.hashCall, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}, Workers: b.cfg.hashWorkers},
			benchkit.Side{Call: b.restLoginLoad(pool), CPU: []benchkit.CPUMeter{b.identityCPU}})
		if err != nil {
			return err
		}
		hash, logins := c.Base.Total(), c.Subject.Total()
		if hash.Calls == 0 || logins.Calls == 0 {
			return fmt.Errorf("no hash or no REST login succeeded: hashing: %v; logins: %v", hash.Err(), logins.Err())
		}
		clean := hash.Err() == nil && logins.Err() == nil
		if !clean {
			b.tbl.Note("REST login ÷ argon2id, %d clients: %v %v", m.clients, hash.Err(), logins.Err())
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(c.Subject.MedianThroughput()))
		b.cpuRow(m.cpu, c.Subject, 0, time.Millisecond)
		b.tbl.Set(m.ratio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(clean && c.Ratio >= minRESTLoginVsHash))
	}
	return nil
}

// restLoginLoad logs in through the REST gateway with the pool's accounts
// in turn, each login from the next source address, as loginLoad does over
// gRPC, and keeps the access tokens it gets.
func (b *bench) restLoginLoad(pool *accountPool) benchkit.CallFunc {
	return func(ctx context.Context, _ int, _ *rand.Rand) error {
		a, i := pool.take()
		resp, err := b.restSources.login(ctx, i, a, b.pass)
		if err != nil {
			return err
		}
		b.keepToken(resp.AccessToken)
		return nil
	}
}
