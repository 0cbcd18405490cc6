module tenantry.dev/notes-node

go 1.26.7

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/stretchr/testify v1.12.1
	google.golang.org/grpc v1.85.0
	tenantry.dev/gen v0.0.0
	tenantry.dev/platform v0.0.0
)
