package rpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
)

// healthPrefix marks the calls logged at Debug: probes come every few
// seconds and would drown everything else.
const healthPrefix = "/grpc.health.v1.Health/"

// unaryInterceptors returns the unary chain, outermost first.
func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	// Errors are mapped once, outside everything that may return a fault:
	// the Guard's are statuses already and pass through unchanged.
	chain := []grpc.UnaryServerInterceptor{
		s.unaryRequestID,
		s.unaryRecover,
	}
	if s.cfg.Metrics != nil {
		chain = append(chain, s.cfg.Metrics.UnaryServerInterceptor())
	}
	chain = append(chain, s.unaryLog, unaryMapErrors)
	chain = append(chain, s.cfg.BeforeAuthUnaryInterceptors...)
	chain = append(chain, s.unaryAuth)
	return append(chain, s.cfg.UnaryInterceptors...)
}

// streamInterceptors returns the stream chain, outermost first.
func (s *Server) streamInterceptors() []grpc.StreamServerInterceptor {
	chain := []grpc.StreamServerInterceptor{
		s.streamRequestID,
		s.streamRecover,
	}
	if s.cfg.Metrics != nil {
		chain = append(chain, s.cfg.Metrics.StreamServerInterceptor())
	}
	chain = append(chain, s.streamLog, streamMapErrors)
	chain = append(chain, s.cfg.BeforeAuthStreamInterceptors...)
	chain = append(chain, s.streamAuth)
	return append(chain, s.cfg.StreamInterceptors...)
}

// startCall returns ctx carrying a new call for method.
func (s *Server) startCall(ctx context.Context, method string) (context.Context, *call) {
	id := requestIDFrom(ctx)
	c := &call{
		requestID: id,
		logger:    s.log.With(slog.String("method", method), slog.String("request_id", id)),
	}
	return context.WithValue(ctx, callKey{}, c), c
}

func (s *Server) unaryRequestID(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, c := s.startCall(ctx, info.FullMethod)
	// SetHeader only fails once headers are sent, which cannot have
	// happened before the handler ran.
	_ = grpc.SetHeader(ctx, metadata.Pairs(HeaderRequestID, c.requestID))
	return handler(ctx, req)
}

func (s *Server) streamRequestID(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, c := s.startCall(ss.Context(), info.FullMethod)
	_ = ss.SetHeader(metadata.Pairs(HeaderRequestID, c.requestID))
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

func (s *Server) unaryRecover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.recovered(ctx, r)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) streamRecover(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.recovered(ss.Context(), r)
		}
	}()
	return handler(srv, ss)
}

// recovered logs a handler's panic with its stack and returns the error
// the client sees, which says nothing of the panic.
func (s *Server) recovered(ctx context.Context, r any) error {
	st := grpcerr.Status(errors.New("handler panicked"))
	Logger(ctx).LogAttrs(ctx, slog.LevelError, "panic in gRPC handler",
		slog.String("code", st.Code().String()),
		slog.String("panic", fmt.Sprint(r)),
		slog.String("stack", string(debug.Stack())),
	)
	return st.Err()
}

func (s *Server) unaryLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}

// logCall writes the one record of a finished call: a routine call's
// (info, by levelFor) as the access-log policy says, others always.
func (s *Server) logCall(ctx context.Context, method string, start time.Time, err error) {
	st := status.Convert(err)
	level := levelFor(st.Code())
	switch {
	case strings.HasPrefix(method, healthPrefix):
		level = slog.LevelDebug
	case level == slog.LevelInfo:
		var write bool
		if level, write = s.cfg.AccessLog.Routine(); !write {
			return
		}
	}
	logger := Logger(ctx)
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("code", st.Code().String()),
		slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("message", st.Message()))
	}
	if c := callFrom(ctx); c != nil {
		attrs = append(attrs, c.logAttrs()...)
	}
	logger.LogAttrs(ctx, level, "rpc", attrs...)
}

// levelFor says how loudly to log a code: callers' mistakes are routine,
// conditions an operator may need to look into are warnings, and our own
// failures are errors.
func levelFor(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound,
		codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted,
		codes.FailedPrecondition, codes.Aborted, codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// authorize runs the Guard and records who called (never how) in the log.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	ctx, err := s.cfg.Auth.Authorize(ctx, method)
	if err != nil {
		noteError(ctx, err)
		return ctx, grpcerr.Error(err)
	}
	if p, ok := authn.PrincipalFrom(ctx); ok {
		AddLogAttrs(ctx, slog.String("role", p.Role))
		if p.Subject != "" {
			AddLogAttrs(ctx, slog.String("subject", p.Subject))
		}
	}
	return ctx, nil
}

func unaryMapErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		noteError(ctx, err)
		return nil, grpcerr.Error(err)
	}
	return resp, nil
}

func streamMapErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	if err != nil {
		noteError(ss.Context(), err)
		return grpcerr.Error(err)
	}
	return nil
}

// noteError keeps for the log what the client will not see: the full
// error text with its causes, and the fault's reason. A bare status error
// adds nothing to the code and message already logged.
func noteError(ctx context.Context, err error) {
	if _, isStatus := err.(interface{ GRPCStatus() *status.Status }); isStatus {
		return
	}
	AddLogAttrs(ctx, slog.String("error", err.Error()))
	if f, ok := fault.As(err); ok && f.Reason != "" {
		AddLogAttrs(ctx, slog.String("reason", f.Reason))
	}
}

// contextStream is a ServerStream with a replaced context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the replaced context.
func (s *contextStream) Context() context.Context { return s.ctx }
