// Package rpcserver wires a gRPC server the way every Tenantry service
// needs it, so that the services only register their handlers.
//
// A Server has, from the outermost interceptor in:
//
//  1. request id: taken from the caller's x-request-id when sane, else
//     generated; available through RequestID and echoed in the x-request-id
//     response header;
//  2. panic recovery: a panicking handler becomes Internal, is logged with
//     its stack (that record stands in for the call's usual one), and the
//     server keeps serving;
//  3. logging: one slog record per call with method, code, duration,
//     request id and whatever the handler added with AddLogAttrs (health
//     checks only at Debug);
//  4. error mapping: whatever the handler (or any interceptor inside this
//     one) returns goes through grpcerr, so clients see stable codes and
//     details and never internal text, while the log keeps the full error;
//  5. the service's BeforeAuth interceptors, which establish what
//     authentication needs to know (identity: the tenant of the call) and
//     see no Principal;
//  6. authentication and authorization by an authn.Guard;
//  7. the malformed-request check: a request that is not valid protobuf
//     (the server codec marks it rather than fail, since grpc-go would
//     answer INTERNAL before any interceptor runs) is INVALID_ARGUMENT
//     REQUEST_MALFORMED;
//  8. any interceptors the service adds, which see the Principal.
//
// It always serves grpc.health.v1 (SERVING once started, NOT_SERVING as
// soon as shutdown begins) and server reflection, both without credentials.
// It refuses plaintext on anything but a loopback address unless told
// otherwise.
//
// Typical use from a service's main package:
//
//	srv, err := rpcserver.New(cfg)
//	registryv1.RegisterTenantServiceServer(srv.GRPC(), handler)
//	err = srv.Serve(ctx) // returns after ctx is cancelled and calls drain
package rpcserver
