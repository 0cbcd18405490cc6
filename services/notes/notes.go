// Package notes is the example product service built on Tenantry: each
// user of a tenant keeps notes in the tenant's own schema. It shows how
// little a product needs: the handlers below validate, run SQL in
// kit.InTenant (a read of one statement in kit.QueryInTenant), and
// convert. Which tenant, which user, which database role
// and which schema is the kit's business (tenantry.dev/kit/service).
package notes

import (
	"context"
	"embed"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	notesv1 "tenantry.dev/gen/tenantry/notes/v1"
	"tenantry.dev/kit/service"
	"tenantry.dev/platform/fault"
)

// Migrations are the notes component's migrations (migrations/NNNN_*.sql),
// registered with the registry at start-up.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Limits of a note.
const (
	maxTitle = 200
	maxBody  = 10000
)

// Server serves tenantry.notes.v1.NotesService.
type Server struct {
	notesv1.UnimplementedNotesServiceServer
	kit *service.Service
}

// NewServer returns the handlers, which reach the database through kit.
func NewServer(kit *service.Service) *Server { return &Server{kit: kit} }

const noteColumns = `id, title, body, create_time`

func scanNote(row pgx.Row) (*notesv1.Note, error) {
	// Scanned straight into the message, and the rest into one value:
	// every variable Scan points to is an allocation of its own.
	n := &notesv1.Note{}
	var v struct {
		id      int64
		created time.Time
	}
	if err := row.Scan(&v.id, &n.Title, &n.Body, &v.created); err != nil {
		return nil, err
	}
	n.Name, n.CreateTime = "notes/"+strconv.FormatInt(v.id, 10), timestamppb.New(v.created)
	return n, nil
}

// user returns the calling user's id; the interceptors made sure of it.
func user(ctx context.Context) string {
	c, _ := service.CallerFrom(ctx)
	return c.User.Subject
}

// CreateNote implements NotesServiceServer.
func (s *Server) CreateNote(ctx context.Context, req *notesv1.CreateNoteRequest) (*notesv1.CreateNoteResponse, error) {
	n := req.GetNote()
	switch {
	case utf8.RuneCountInString(n.GetTitle()) > maxTitle:
		return nil, fault.Invalid("note.title", "TITLE_TOO_LONG", "a title has at most %d characters", maxTitle)
	case strings.TrimSpace(n.GetBody()) == "":
		return nil, fault.Invalid("note.body", "BODY_EMPTY", "a note needs a body")
	case utf8.RuneCountInString(n.GetBody()) > maxBody:
		return nil, fault.Invalid("note.body", "BODY_TOO_LONG", "a body has at most %d characters", maxBody)
	}
	var out *notesv1.Note
	err := s.kit.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) (err error) {
		out, err = scanNote(tx.QueryRow(ctx, `INSERT INTO notes (owner, title, body) VALUES ($1, $2, $3) RETURNING `+noteColumns,
			user(ctx), n.GetTitle(), n.GetBody()))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &notesv1.CreateNoteResponse{Note: out}, nil
}

// ListNotes implements NotesServiceServer. The page token is the id of
// the last note of the previous page.
func (s *Server) ListNotes(ctx context.Context, req *notesv1.ListNotesRequest) (*notesv1.ListNotesResponse, error) {
	size := req.GetPageSize()
	switch {
	case size < 0 || size > 100:
		return nil, fault.Invalid("page_size", "PAGE_SIZE_INVALID", "page_size must be 1-100 (0 means 50)")
	case size == 0:
		size = 50
	}
	after := int64(1<<63 - 1)
	if tok := req.GetPageToken(); tok != "" {
		v, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || v <= 0 {
			return nil, fault.Invalid("page_token", "PAGE_TOKEN_INVALID", "page_token must be a next_page_token this service returned")
		}
		after = v
	}
	// One statement: the kit runs it without BEGIN and COMMIT.
	resp := &notesv1.ListNotesResponse{}
	err := s.kit.QueryInTenant(ctx, func(rows pgx.Rows) (err error) {
		resp.Notes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*notesv1.Note, error) { return scanNote(r) })
		return err
	}, `SELECT `+noteColumns+` FROM notes WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, user(ctx), after, size+1)
	if err != nil {
		return nil, err
	}
	if len(resp.Notes) > int(size) {
		resp.Notes = resp.Notes[:size]
		resp.NextPageToken = strings.TrimPrefix(resp.Notes[size-1].GetName(), "notes/")
	}
	return resp, nil
}

// noteID parses "notes/{id}".
func noteID(name string) (int64, error) {
	v, ok := strings.CutPrefix(name, "notes/")
	id, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || id <= 0 {
		return 0, fault.Invalid("name", "NOTE_NAME_INVALID", "name must be like notes/42, not %q", name)
	}
	return id, nil
}

func errNoteNotFound(name string) error {
	return fault.New(fault.NotFound, "NOTE_NOT_FOUND", "%s does not exist or is not yours", name)
}

// GetNote implements NotesServiceServer.
func (s *Server) GetNote(ctx context.Context, req *notesv1.GetNoteRequest) (*notesv1.GetNoteResponse, error) {
	id, err := noteID(req.GetName())
	if err != nil {
		return nil, err
	}
	var out *notesv1.Note
	err = s.kit.QueryInTenant(ctx, func(rows pgx.Rows) (err error) {
		out, err = pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (*notesv1.Note, error) { return scanNote(r) })
		return err
	}, `SELECT `+noteColumns+` FROM notes WHERE id = $1 AND owner = $2`, id, user(ctx))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoteNotFound(req.GetName())
	}
	if err != nil {
		return nil, err
	}
	return &notesv1.GetNoteResponse{Note: out}, nil
}

// DeleteNote implements NotesServiceServer.
func (s *Server) DeleteNote(ctx context.Context, req *notesv1.DeleteNoteRequest) (*notesv1.DeleteNoteResponse, error) {
	id, err := noteID(req.GetName())
	if err != nil {
		return nil, err
	}
	err = s.kit.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM notes WHERE id = $1 AND owner = $2`, id, user(ctx))
		if err == nil && tag.RowsAffected() == 0 {
			return errNoteNotFound(req.GetName())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &notesv1.DeleteNoteResponse{}, nil
}
