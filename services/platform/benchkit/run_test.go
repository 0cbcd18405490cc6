package benchkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReasonNamesTheCauseOfAFailure(t *testing.T) {
	t.Parallel()
	stepErr := errors.New("create tenant t00001: context canceled")
	spent, cancelSpent := context.WithCancelCause(context.Background())
	cancelSpent(ErrBudget)
	interrupted, cancelInterrupted := context.WithCancel(context.Background())
	cancelInterrupted()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"a failure in a live run is its own reason", context.Background(), "create tenant t00001: context canceled"},
		{"a spent budget is named with the budget", spent, "the time budget of 9m0s (-budget) was spent (create tenant t00001: context canceled)"},
		{"an interruption hides the context error it caused", interrupted, "the run was interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Reason(tc.ctx, 9*time.Minute, stepErr))
		})
	}
}
