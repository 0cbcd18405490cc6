package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

func (c *cli) tenantsMove(ctx context.Context, args []string) error {
	var (
		grace  optionalDuration
		noWait bool
	)
	pos, err := flags("tenants move", args, 2, func(fs *flag.FlagSet) {
		fs.Var(&grace, "grace", "how long the old copy is kept, read-only, after the switch (default 24h; 0s drops it at once)")
		fs.BoolVar(&noWait, "no-wait", false, "print the operation and return at once")
	})
	if err != nil {
		return err
	}
	req := &registryv1.MoveTenantRequest{Name: tenantName(pos[0]), Placement: pos[1]}
	if grace.set {
		req.Grace = durationpb.New(grace.d)
	}
	cctx, cancel := c.call(ctx)
	resp, err := c.tenants.MoveTenant(cctx, req)
	cancel()
	if err != nil {
		return err
	}
	return c.started(ctx, resp.GetOperation(), noWait)
}

// optionalDuration is a duration flag that knows whether it was given,
// so that "--grace 0s" (drop the old copy at once) is told from no flag
// (the registry's default).
type optionalDuration struct {
	d   time.Duration
	set bool
}

func (o *optionalDuration) String() string { return o.d.String() }

func (o *optionalDuration) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	o.d, o.set = d, true
	return nil
}

// moveSettled reports whether a move has got as far as waiting is useful
// for: the tenant serves from the target (the old copy is dropped when
// its grace ends, up to 30 days later), or it stayed where it was.
func moveSettled(op *registryv1.Operation) bool {
	switch op.GetMoveMetadata().GetPhase() {
	case registryv1.MoveMetadata_PHASE_SWITCHED, registryv1.MoveMetadata_PHASE_DONE, registryv1.MoveMetadata_PHASE_ABANDONED:
		return true
	}
	return op.GetDone()
}

func movePhase(m *registryv1.MoveMetadata) string {
	return strings.ToLower(strings.TrimPrefix(m.GetPhase().String(), "PHASE_"))
}

// moveProgress is the line follow draws on stderr while a move runs.
func moveProgress(m *registryv1.MoveMetadata) string {
	line := fmt.Sprintf("%s: %s → %s, %s", strings.TrimPrefix(m.GetTenant(), "tenants/"), m.GetSourcePlacement(), m.GetTargetPlacement(), movePhase(m))
	if b := m.GetSourceBytes(); b > 0 {
		line += fmt.Sprintf(" (%s)", mebibytes(b))
	}
	return line
}

func mebibytes(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printMove writes a move's operation.
func printMove(w io.Writer, op *registryv1.Operation) {
	m := op.GetMoveMetadata()
	fmt.Fprintf(w, "tenant\t%s\n", strings.TrimPrefix(m.GetTenant(), "tenants/"))
	fmt.Fprintf(w, "placement\t%s → %s\n", m.GetSourcePlacement(), m.GetTargetPlacement())
	fmt.Fprintf(w, "phase\t%s\n", movePhase(m))
	if b := m.GetSourceBytes(); b > 0 {
		fmt.Fprintf(w, "copied\t%s\n", mebibytes(b))
	}
	if m.GetFenceDuration() != nil {
		fmt.Fprintf(w, "writes fenced\t%s\n", m.GetFenceDuration().AsDuration().Round(100*time.Microsecond))
	}
	if m.GetSwitchTime() != nil {
		fmt.Fprintf(w, "switched\t%s\n", ts(m.GetSwitchTime()))
	}
	if m.GetDropTime() != nil {
		what := "old copy dropped at"
		if m.GetPhase() != registryv1.MoveMetadata_PHASE_DONE {
			what = "old copy kept until"
		}
		fmt.Fprintf(w, "%s\t%s\n", what, ts(m.GetDropTime()))
	}
}
