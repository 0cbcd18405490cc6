package server

import (
	"context"
	_ "embed" // the OpenAPI document
	"log/slog"
	"net"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tracing"
	"tenantry.dev/tenant-registry/internal/config"
)

// openAPI is the registry's OpenAPI document, generated from the protos and
// their HTTP mapping by `make generate` (see buf.gen.yaml).
//
//go:embed openapi/tenantry/registry/v1/registry.swagger.json
var openAPI []byte

// newGateway builds the REST gateway in front of rpc, or returns nil when
// cfg turns HTTP off. It listens at once, so that a taken port fails start-up.
func newGateway(ctx context.Context, cfg *config.Config, rpc *rpcserver.Server, m *metrics.Registry, serveMetrics bool, tr *tracing.Tracing, logger *slog.Logger) (*restgateway.Gateway, error) {
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	return restgateway.New(ctx, restgateway.Config{
		Name:            "tenant-registry",
		Addr:            cfg.HTTPAddr,
		FlagAddr:        "--http-addr (TENANTRY_REGISTRY_HTTP_ADDR)",
		TLSCertFile:     cfg.TLSCertFile,
		TLSKeyFile:      cfg.TLSKeyFile,
		AllowInsecure:   cfg.AllowInsecure,
		GRPC:            rpc.GRPC(),
		GRPCUsesTLS:     cfg.TLSCertFile != "",
		Register:        []restgateway.RegisterFunc{registryv1.RegisterTenantServiceHandler, registryv1.RegisterComponentServiceHandler, registryv1.RegisterOperationServiceHandler, registryv1.RegisterPlacementServiceHandler},
		OpenAPI:         openAPI,
		Metrics:         m,
		ServeMetrics:    serveMetrics,
		Tracing:         tr,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          logger,
		AccessLog:       cfg.AccessLog,
	})
}

// HTTPAddr is the address of the REST gateway, or nil when HTTP is off.
func (a *App) HTTPAddr() net.Addr {
	if a.rest == nil {
		return nil
	}
	return a.rest.Addr()
}
