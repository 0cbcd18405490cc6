package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit statuses of a bench program.
const (
	ExitMeasured    = 0   // every measure was taken; the table says which targets were met
	ExitIncomplete  = 1   // some measures could not be taken; the table says why
	ExitUsage       = 2   // bad flags
	ExitInterrupted = 130 // SIGINT or SIGTERM
)

// ErrBudget is the cause of a run's context when its time budget is spent.
var ErrBudget = errors.New("the run's time budget was spent")

// RunContext returns the context a run works in: cancelled by the first
// SIGINT or SIGTERM, or with cause [ErrBudget] once budget has passed. The
// run still prints what it measured and cleans up; a second signal kills
// at once (a PostgreSQL cluster's watchdog and the services' parent-death
// signal then clean up). interrupted reports whether a signal came; stop
// releases the context and the signal handling.
func RunContext(budget time.Duration) (ctx context.Context, interrupted func() bool, stop func()) {
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Once the first signal has cancelled the run, the default handling
	// comes back, so that the second one kills.
	go func() { <-sigCtx.Done(); stopSignals() }()
	ctx, cancel := context.WithTimeoutCause(sigCtx, budget, ErrBudget)
	return ctx, func() bool { return sigCtx.Err() != nil }, func() { cancel(); stopSignals() }
}

// Reason explains why a step of a run in ctx failed with err, naming an
// interruption or the spent budget rather than the context error they cause
// deep inside. budget is the run's, as the -budget flag gave it.
func Reason(ctx context.Context, budget time.Duration, err error) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrBudget):
		return fmt.Sprintf("the time budget of %s (-budget) was spent (%v)", budget, err)
	case cause != nil:
		return "the run was interrupted"
	}
	return err.Error()
}

// RandomToken returns a random secret (a bearer token, a key) for one run.
func RandomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
