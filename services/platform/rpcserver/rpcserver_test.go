package rpcserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/rpcserver"
)

const (
	operatorToken = "op-secret-token-1"
	serviceToken  = "svc-secret-token-1"
	// waitLimit bounds every wait in these tests; it is a deadline for a
	// failure, never a pause.
	waitLimit = 20 * time.Second
)

// logBuffer collects JSON log records from concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the decoded records for which keep is true.
func (b *logBuffer) records(t *testing.T, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		if keep(rec) {
			out = append(out, rec)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// callRecord returns the one "rpc" record of the call with requestID.
func (b *logBuffer) callRecord(t *testing.T, requestID string) map[string]any {
	t.Helper()
	recs := b.records(t, func(r map[string]any) bool { return r["msg"] == "rpc" && r["request_id"] == requestID })
	require.Len(t, recs, 1, "want exactly one rpc record for request %s in:\n%s", requestID, b.String())
	return recs[0]
}

// harness is a Server on a real loopback socket and a client for it.
type harness struct {
	srv   *rpcserver.Server
	conn  *grpc.ClientConn
	logs  *logBuffer
	probe *probe
	stop  context.CancelFunc
	done  chan error
}

func newGuard(t testing.TB) *authn.Guard {
	t.Helper()
	static, err := authn.NewStaticTokens(
		authn.Credential{Role: "operator", Token: operatorToken},
		authn.Credential{Role: "service", Token: serviceToken},
	)
	require.NoError(t, err)
	guard, err := authn.NewGuard(authn.Policy{
		echoMethod:  {"operator"},
		countMethod: {"operator", "service"},
	}, static)
	require.NoError(t, err)
	return guard
}

// start serves a probe with the test policy; adjust changes the Config
// first. The server is stopped, and must stop, when the test ends.
func start(t testing.TB, adjust func(*rpcserver.Config)) *harness {
	t.Helper()
	h := &harness{logs: &logBuffer{}, probe: newProbe(), done: make(chan error, 1)}
	cfg := rpcserver.Config{
		Name:            "test",
		Addr:            "127.0.0.1:0",
		Logger:          slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth:            newGuard(t),
		ShutdownTimeout: waitLimit,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := rpcserver.New(cfg)
	require.NoError(t, err)
	srv.GRPC().RegisterService(&probeDesc, h.probe)
	require.Nil(t, srv.Addr(), "no address before Listen")
	require.NoError(t, srv.Listen())
	h.srv = srv

	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go func() { h.done <- srv.Serve(ctx) }()

	if cfg.TLSCertFile == "" {
		conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		h.conn = conn
	}
	t.Cleanup(func() {
		if h.conn != nil {
			_ = h.conn.Close()
		}
		h.stop()
		select {
		case err := <-h.done:
			require.NoError(t, err)
		case <-time.After(waitLimit):
			t.Error("Serve did not return after its context was cancelled")
		}
	})
	return h
}

// callCtx returns a bounded context with the given token (none if empty)
// and request id (none if empty).
func callCtx(t *testing.T, token, requestID string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if requestID != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, rpcserver.HeaderRequestID, requestID)
	}
	return ctx
}

// echo calls the probe's Echo and returns its answer and response headers.
func (h *harness) echo(ctx context.Context, value string) (string, metadata.MD, error) {
	var header metadata.MD
	out := new(wrapperspb.StringValue)
	err := h.conn.Invoke(ctx, echoMethod, wrapperspb.String(value), out, grpc.Header(&header))
	return out.GetValue(), header, err
}

// count calls the probe's Count stream and returns what it sent.
func (h *harness) count(ctx context.Context, value string) ([]string, metadata.MD, error) {
	stream, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, countMethod)
	if err != nil {
		return nil, nil, err
	}
	if err := stream.SendMsg(wrapperspb.String(value)); err != nil {
		return nil, nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, nil, err
	}
	var got []string
	for {
		msg := new(wrapperspb.StringValue)
		err := stream.RecvMsg(msg)
		if errors.Is(err, io.EOF) {
			header, _ := stream.Header()
			return got, header, nil
		}
		if err != nil {
			return got, nil, err
		}
		got = append(got, msg.GetValue())
	}
}

func (h *harness) checkHealth(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

func TestHealthAndReflectionNeedNoCredentials(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	t.Run("overall health is SERVING", func(t *testing.T) {
		t.Parallel()
		st, err := h.checkHealth(callCtx(t, "", ""), "")
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
	})

	t.Run("each registered service is SERVING", func(t *testing.T) {
		t.Parallel()
		st, err := h.checkHealth(callCtx(t, "", ""), probeService)
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
	})

	t.Run("reflection lists the services", func(t *testing.T) {
		t.Parallel()
		stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(callCtx(t, "", ""))
		require.NoError(t, err)
		require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
		}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		require.Contains(t, names, probeService)
		require.Contains(t, names, "grpc.health.v1.Health")
		require.Contains(t, names, "grpc.reflection.v1.ServerReflection")
		require.NoError(t, stream.CloseSend())
	})

	t.Run("health checks are logged at debug only", func(t *testing.T) {
		t.Parallel()
		_, err := h.checkHealth(callCtx(t, "", "health-log-1"), "")
		require.NoError(t, err)
		rec := h.logs.callRecord(t, "health-log-1")
		require.Equal(t, "DEBUG", rec["level"])
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	cases := []struct {
		name    string
		token   string
		code    codes.Code
		message string
	}{
		{"a call without a token is unauthenticated", "", codes.Unauthenticated, authn.MessageMissingBearerToken},
		{"a call with a wrong token is unauthenticated", "not-a-token", codes.Unauthenticated, "invalid credentials"},
		{"a call with a role the method does not allow is denied", serviceToken, codes.PermissionDenied, `role "service" may not call ` + echoMethod},
		{"a call with an allowed role reaches the handler", operatorToken, codes.OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := h.echo(callCtx(t, tc.token, ""), "hello")
			require.Equal(t, tc.code, status.Code(err), "error: %v", err)
			if tc.code != codes.OK {
				require.Equal(t, tc.message, status.Convert(err).Message())
				return
			}
			role, _, _ := strings.Cut(got, "|")
			require.Equal(t, "operator", role)
		})
	}

	t.Run("streams are authenticated too", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.count(callCtx(t, "", ""), "x")
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		got, _, err := h.count(callCtx(t, serviceToken, ""), "x")
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.True(t, strings.HasPrefix(got[0], "service 0 "), got[0])
	})
}

func TestErrorsReachClientsMapped(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	t.Run("a fault keeps its code and details and loses its cause", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.echo(callCtx(t, operatorToken, "fault-1"), echoFault)
		st := status.Convert(err)
		require.Equal(t, codes.InvalidArgument, st.Code())
		require.Equal(t, "slug must be lowercase", st.Message())
		var info *errdetails.ErrorInfo
		var bad *errdetails.BadRequest
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.ErrorInfo:
				info = d
			case *errdetails.BadRequest:
				bad = d
			}
		}
		require.NotNil(t, info)
		require.Equal(t, "INVALID_SLUG", info.GetReason())
		require.Equal(t, grpcerr.Domain, info.GetDomain())
		require.NotNil(t, bad)
		require.Equal(t, "tenant.slug", bad.GetFieldViolations()[0].GetField())
		require.NotContains(t, err.Error(), "pq:")

		rec := h.logs.callRecord(t, "fault-1")
		require.Equal(t, "InvalidArgument", rec["code"])
		require.Equal(t, "INVALID_SLUG", rec["reason"])
		require.Contains(t, rec["error"], "pq:", "the cause belongs in the log")
	})

	t.Run("an unexpected error is internal and says nothing more", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.echo(callCtx(t, operatorToken, "plain-1"), echoPlainError)
		require.Equal(t, codes.Internal, status.Code(err))
		require.Equal(t, "internal error", status.Convert(err).Message())

		rec := h.logs.callRecord(t, "plain-1")
		require.Equal(t, "ERROR", rec["level"])
		require.Contains(t, rec["error"], "load tenant: pq:")
	})

	t.Run("a panicking handler is internal and the server keeps serving", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.echo(callCtx(t, operatorToken, "panic-1"), echoPanic)
		require.Equal(t, codes.Internal, status.Code(err))
		require.Equal(t, "internal error", status.Convert(err).Message())

		_, _, err = h.echo(callCtx(t, operatorToken, ""), "still there?")
		require.NoError(t, err)

		panics := h.logs.records(t, func(r map[string]any) bool { return r["request_id"] == "panic-1" })
		require.Len(t, panics, 1)
		require.Equal(t, "ERROR", panics[0]["level"])
		require.Equal(t, echoMethod, panics[0]["method"])
		require.Contains(t, panics[0]["panic"], "boom")
		require.Contains(t, panics[0]["stack"], "probe_test.go")
	})

	t.Run("a panicking stream is internal", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.count(callCtx(t, operatorToken, ""), echoPanic)
		require.Equal(t, codes.Internal, status.Code(err))
	})
}

func TestRequestIDAndLogging(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	t.Run("a sane request id is used and echoed", func(t *testing.T) {
		t.Parallel()
		got, header, err := h.echo(callCtx(t, operatorToken, "req-echo-1"), "hi")
		require.NoError(t, err)
		require.Equal(t, "operator|req-echo-1", got)
		require.Equal(t, []string{"req-echo-1"}, header.Get(rpcserver.HeaderRequestID))
	})

	for name, sent := range map[string]string{
		"a missing request id":     "",
		"a request id with spaces": "two words",
		"an overlong request id":   strings.Repeat("x", 129),
	} {
		t.Run(name+" is replaced by a generated one", func(t *testing.T) {
			t.Parallel()
			got, header, err := h.echo(callCtx(t, operatorToken, sent), "hi")
			require.NoError(t, err)
			ids := header.Get(rpcserver.HeaderRequestID)
			require.Len(t, ids, 1)
			require.NotEmpty(t, ids[0])
			require.NotEqual(t, sent, ids[0])
			require.Equal(t, "operator|"+ids[0], got, "the handler sees the id the client gets")
		})
	}

	t.Run("a stream echoes the request id", func(t *testing.T) {
		t.Parallel()
		got, header, err := h.count(callCtx(t, operatorToken, "req-stream-1"), "x")
		require.NoError(t, err)
		require.Equal(t, []string{"req-stream-1"}, header.Get(rpcserver.HeaderRequestID))
		require.Equal(t, "operator 0 req-stream-1", got[0])
	})

	t.Run("the call's log record has method, code, duration, role and the handler's attributes", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.echo(callCtx(t, operatorToken, "req-log-1"), echoTenant)
		require.NoError(t, err)
		rec := h.logs.callRecord(t, "req-log-1")
		require.Equal(t, "INFO", rec["level"])
		require.Equal(t, echoMethod, rec["method"])
		require.Equal(t, "OK", rec["code"])
		require.Contains(t, rec, "duration")
		require.Equal(t, "operator", rec["role"])
		require.Equal(t, "acme", rec["tenant"])
		require.Equal(t, "test", rec["server"])
	})

	t.Run("denied calls are logged without the token", func(t *testing.T) {
		t.Parallel()
		_, _, err := h.echo(callCtx(t, serviceToken, "req-denied-1"), "hi")
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		rec := h.logs.callRecord(t, "req-denied-1")
		require.Equal(t, "PermissionDenied", rec["code"])
		require.Equal(t, "ROLE_NOT_ALLOWED", rec["reason"])
		require.NotContains(t, h.logs.String(), serviceToken)
		require.NotContains(t, h.logs.String(), operatorToken)
	})
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	// Watch health as a load balancer would, from before shutdown begins.
	watchCtx, stopWatching := context.WithCancel(callCtx(t, "", ""))
	defer stopWatching()
	watch, err := healthpb.NewHealthClient(h.conn).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())

	// Hold a call in flight.
	type result struct {
		value string
		err   error
	}
	inFlight := make(chan result, 1)
	go func() {
		v, _, err := h.echo(callCtx(t, operatorToken, ""), echoBlock)
		inFlight <- result{v, err}
	}()
	select {
	case <-h.probe.entered:
	case <-time.After(waitLimit):
		t.Fatal("the blocking call never reached the handler")
	}

	h.stop()

	next, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, next.GetStatus())
	// A watch is a call in flight too; a load balancer that has seen
	// NOT_SERVING goes away.
	stopWatching()

	select {
	case err := <-h.done:
		t.Fatalf("Serve returned (%v) while a call was in flight", err)
	default:
	}

	close(h.probe.release)
	select {
	case r := <-inFlight:
		require.NoError(t, r.err)
		require.Equal(t, "released", r.value)
	case <-time.After(waitLimit):
		t.Fatal("the in-flight call did not complete")
	}

	select {
	case err := <-h.done:
		require.NoError(t, err)
		h.done <- err // for the cleanup, which waits too
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return after the last call completed")
	}
}

func TestDrainDelayKeepsServingNotServing(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *rpcserver.Config) { c.DrainDelay = 2 * time.Second })

	st, err := h.checkHealth(callCtx(t, "", ""), "")
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, st)

	h.stop()
	// During the drain delay, new probes still get answers, and the
	// answer turns NOT_SERVING.
	deadline := time.Now().Add(waitLimit)
	for {
		st, err := h.checkHealth(callCtx(t, "", ""), "")
		require.NoError(t, err, "the server must keep answering during the drain delay")
		if st == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		require.True(t, time.Now().Before(deadline), "health never turned NOT_SERVING")
	}
}

func TestShutdownTimeoutCutsOffStuckCalls(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *rpcserver.Config) { c.ShutdownTimeout = 100 * time.Millisecond })

	inFlight := make(chan error, 1)
	go func() {
		_, _, err := h.echo(callCtx(t, operatorToken, ""), echoBlock)
		inFlight <- err
	}()
	select {
	case <-h.probe.entered:
	case <-time.After(waitLimit):
		t.Fatal("the blocking call never reached the handler")
	}

	h.stop()
	select {
	case err := <-h.done:
		require.NoError(t, err)
		h.done <- err
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return after the shutdown timeout")
	}
	select {
	case err := <-inFlight:
		require.Error(t, err, "the stuck call is cut off")
	case <-time.After(waitLimit):
		t.Fatal("the stuck call was not cut off")
	}
}

func TestServeWithAContextAlreadyCancelledReturnsCleanly(t *testing.T) {
	t.Parallel()
	srv, err := rpcserver.New(rpcserver.Config{Addr: "127.0.0.1:0", Auth: newGuard(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, srv.Serve(ctx))
	require.ErrorContains(t, srv.Serve(t.Context()), "Serve called twice")
}

func TestServeWarnsAboutPolicyMistakes(t *testing.T) {
	t.Parallel()
	static, err := authn.NewStaticTokens()
	require.NoError(t, err)
	typo := "/" + probeService + "/Ecko"
	guard, err := authn.NewGuard(authn.Policy{typo: {"operator"}}, static)
	require.NoError(t, err)
	h := start(t, func(c *rpcserver.Config) { c.Auth = guard })

	// Serve warns before it starts serving, so once a call succeeds the
	// warnings are in the log.
	_, err = h.checkHealth(callCtx(t, "", ""), "")
	require.NoError(t, err)
	warned := map[string]string{}
	for _, r := range h.logs.records(t, func(r map[string]any) bool { return r["level"] == "WARN" }) {
		warned[r["method"].(string)] = r["msg"].(string)
	}
	require.Contains(t, warned[echoMethod], "not in the authorization policy")
	require.Contains(t, warned[countMethod], "not in the authorization policy")
	require.Contains(t, warned[typo], "does not have")
	require.NotContains(t, warned, "/grpc.health.v1.Health/Check", "public methods need no policy")
}

func TestServiceInterceptorsRunAfterAuthentication(t *testing.T) {
	t.Parallel()
	sawRole := make(chan string, 1)
	h := start(t, func(c *rpcserver.Config) {
		c.UnaryInterceptors = []grpc.UnaryServerInterceptor{
			func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				role, _ := authn.RoleFrom(ctx)
				sawRole <- role
				if req.(*wrapperspb.StringValue).GetValue() == "quota" {
					return nil, fault.New(fault.ResourceExhausted, "TENANT_QUOTA_EXCEEDED", "quota exceeded").
						WithMetadata(grpcerr.MetadataRetryAfter, "30s")
				}
				return handler(ctx, req)
			},
		}
	})

	_, _, err := h.echo(callCtx(t, operatorToken, ""), "quota")
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Equal(t, "operator", <-sawRole)
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	require.NotNil(t, retry)
	require.Equal(t, 30*time.Second, retry.GetRetryDelay().AsDuration())
}

// With stream workers, calls beyond the workers still run at once (each on
// a goroutine of its own), the workers serve later calls, and shutdown
// stops them.
func TestStreamWorkersServeCallsBeyondTheirNumber(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *rpcserver.Config) { c.StreamWorkers = 2 })

	const held = 5
	results := make(chan error, held)
	for range held {
		go func() {
			v, _, err := h.echo(callCtx(t, operatorToken, ""), echoBlock)
			if err == nil && v != "released" {
				err = fmt.Errorf("got %q, want released", v)
			}
			results <- err
		}()
	}
	for i := range held {
		select {
		case <-h.probe.entered:
		case <-time.After(waitLimit):
			t.Fatalf("only %d of %d held calls reached the handler: calls beyond the workers must not wait for them", i, held)
		}
	}
	// Every worker is busy; another call is still answered.
	v, _, err := h.echo(callCtx(t, operatorToken, ""), "hello")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(v, "operator|"), v)

	close(h.probe.release)
	for range held {
		select {
		case err := <-results:
			require.NoError(t, err)
		case <-time.After(waitLimit):
			t.Fatal("a held call did not complete after release")
		}
	}
	for range 20 {
		_, _, err := h.echo(callCtx(t, operatorToken, ""), "again")
		require.NoError(t, err)
	}
}
