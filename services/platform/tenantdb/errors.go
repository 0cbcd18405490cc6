package tenantdb

import "errors"

// Sentinel errors, matched with errors.Is. Messages carry the details; these
// values let callers branch without parsing text.
var (
	// ErrInvalidSchemaName reports a schema name that PostgreSQL would
	// silently alter (truncate past 63 bytes, strip NUL) or that is empty, so
	// it could name a different schema than the caller meant.
	ErrInvalidSchemaName = errors.New("invalid schema name")

	// ErrSchemaNotFound reports that the schema to migrate does not exist;
	// migrations never create tenant schemas, which is the registry's job.
	ErrSchemaNotFound = errors.New("schema does not exist")

	// ErrInvalidMigrations reports a migration set that is not numbered
	// contiguously from 1, has duplicates, badly named files or empty SQL.
	ErrInvalidMigrations = errors.New("invalid migrations")

	// ErrSchemasFailed is returned by MigrateAll when at least one schema
	// failed; the Report says which and why.
	ErrSchemasFailed = errors.New("some schemas failed to migrate")
)
