package rpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/rpcserver"
)

// The probe is a tiny hand-written gRPC service for these tests, so that
// the platform module needs no generated code of any Tenantry service.
const (
	probeService = "tenantry.test.v1.Probe"
	echoMethod   = "/" + probeService + "/Echo"
	countMethod  = "/" + probeService + "/Count"
)

// Echo inputs that make the probe misbehave on purpose.
const (
	echoPanic      = "panic"
	echoFault      = "fault"
	echoPlainError = "plain-error"
	echoBlock      = "block"
	echoTenant     = "tenant"
	leakedInternal = `pq: relation "tenant_acme.users" does not exist`
)

// probe implements the service. entered and release let a test hold a
// call in flight.
type probe struct {
	entered chan struct{}
	release chan struct{}
}

func newProbe() *probe {
	return &probe{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

// echo answers "<role>|<request id>" unless told to misbehave.
func (p *probe) echo(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	switch in.GetValue() {
	case echoPanic:
		panic("boom: " + leakedInternal)
	case echoFault:
		return nil, fault.Invalid("tenant.slug", "INVALID_SLUG", "slug must be lowercase").
			WithCause(errors.New(leakedInternal))
	case echoPlainError:
		return nil, fmt.Errorf("load tenant: %w", errors.New(leakedInternal))
	case echoBlock:
		p.entered <- struct{}{}
		select {
		case <-p.release:
			return wrapperspb.String("released"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case echoTenant:
		rpcserver.AddLogAttrs(ctx, slog.String("tenant", "acme"))
	}
	role, _ := authn.RoleFrom(ctx)
	return wrapperspb.String(role + "|" + rpcserver.RequestID(ctx)), nil
}

// count reads one message and answers with the caller's role three times.
func (p *probe) count(stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	if in.GetValue() == echoPanic {
		panic("boom in a stream")
	}
	role, _ := authn.RoleFrom(stream.Context())
	for i := range 3 {
		if err := stream.SendMsg(wrapperspb.String(fmt.Sprintf("%s %d %s", role, i, rpcserver.RequestID(stream.Context())))); err != nil {
			return err
		}
	}
	return nil
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: probeService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			p := srv.(*probe)
			if interceptor == nil {
				return p.echo(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return p.echo(ctx, req.(*wrapperspb.StringValue))
			})
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(*probe).count(stream)
		},
	}},
}
