package tenantdb

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The fence itself, and services following a real move, are tested in the
// registry (TestMoveTenantUnderWrites); this is RetryMoving's bookkeeping.
func TestRetryMoving(t *testing.T) {
	fenced := &pgconn.PgError{Code: MovingSQLState, Message: "tenant schema acme is moving"}
	other := errors.New("another failure")
	type tenant struct{ placement string }
	for _, tc := range []struct {
		name string
		// fail says what do returns in each placement.
		fail    map[string]error
		moveTo  string // the placement current reports
		wantErr error
		wantIn  []string // placements do ran in, in order
	}{
		{"not fenced", map[string]error{}, "a", nil, []string{"a"}},
		{"other error is not retried", map[string]error{"a": other}, "b", other, []string{"a"}},
		{"fenced, then moved", map[string]error{"a": fenced}, "b", nil, []string{"a", "b"}},
		{"moved and failing there", map[string]error{"a": fenced, "b": other}, "b", other, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran []string
			err := RetryMoving(context.Background(), tenant{"a"}, func(t tenant) string { return t.placement },
				func(context.Context) (tenant, error) { return tenant{tc.moveTo}, nil },
				func(_ context.Context, t tenant) error {
					ran = append(ran, t.placement)
					return tc.fail[t.placement]
				})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(ran) != len(tc.wantIn) {
				t.Fatalf("ran in %v, want %v", ran, tc.wantIn)
			}
			for i := range ran {
				if ran[i] != tc.wantIn[i] {
					t.Fatalf("ran in %v, want %v", ran, tc.wantIn)
				}
			}
		})
	}
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := RetryMoving(ctx, tenant{"a"}, func(t tenant) string { return t.placement },
			func(context.Context) (tenant, error) {
				calls++
				if calls == 3 {
					cancel()
				}
				return tenant{"a"}, nil // never moves
			},
			func(context.Context, tenant) error { return fenced })
		if !IsMoving(err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the fence's error and context.Canceled", err)
		}
	})
}
