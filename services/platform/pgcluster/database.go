package pgcluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrDatabaseExists is returned, wrapped, by CreateDatabase when the database
// already exists, so that callers who only need it to exist can carry on.
var ErrDatabaseExists = errors.New("database already exists")

// duplicateDatabase is the SQLSTATE of CREATE DATABASE on an existing name.
const duplicateDatabase = "42P04"

// CreateDatabase creates a database. Any name PostgreSQL accepts works, since
// it is quoted as an identifier; an existing name fails with ErrDatabaseExists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == duplicateDatabase {
			return fmt.Errorf("create database %q: %w", name, ErrDatabaseExists)
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}
