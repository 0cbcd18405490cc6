module tenantry.dev/kit

go 1.26.7

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/stretchr/testify v1.12.1
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b
	google.golang.org/grpc v1.85.0
	tenantry.dev/gen v0.0.0
	tenantry.dev/platform v0.0.0
)
