// Package restgateway serves a service's REST/JSON face: grpc-gateway
// routes that call the service's own *grpc.Server in-process, through an
// in-memory listener served by that same server, so that every interceptor
// (request id, logging, authentication, tenancy, error mapping, limits)
// runs exactly once, as for any gRPC call, with no network hop.
//
// Around the routes a Gateway adds what HTTP clients need:
//
//   - errors as JSON google.rpc.Status bodies ({"code", "message",
//     "details"}), with the HTTP status grpc-gateway maps the gRPC code to;
//   - a request body limit (DefaultMaxBodyBytes), answered with 413;
//   - request ids: a sane X-Request-Id from the client, else a new one,
//     reaches the gRPC layer as x-request-id and comes back as X-Request-Id;
//   - only Authorization and X-Request-Id become gRPC metadata: no other
//     client header (Grpc-Metadata-* included) can set metadata that the
//     service might trust;
//   - the client's address and host, taken from X-Forwarded-For and
//     X-Forwarded-Host only when the peer is a trusted proxy, reach the
//     service as x-forwarded-for and x-forwarded-host (see ClientIP and
//     Host);
//   - /healthz (the HTTP server is up), /readyz (the gRPC health service
//     says SERVING), /openapi.json;
//   - one access-log record per request.
package restgateway
