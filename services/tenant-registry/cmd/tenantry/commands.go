package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/tenantdb"
)

func tenantName(slug string) string { return "tenants/" + slug }

func (c *cli) printTenant(t *registryv1.Tenant) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "name\t%s\n", t.GetName())
		fmt.Fprintf(w, "uid\t%s\n", t.GetUid())
		fmt.Fprintf(w, "display name\t%s\n", t.GetDisplayName())
		fmt.Fprintf(w, "state\t%s\n", strings.TrimPrefix(t.GetState().String(), "STATE_"))
		fmt.Fprintf(w, "schema\t%s (placement %s)\n", t.GetSchema(), t.GetPlacement())
		for _, d := range t.GetDomains() {
			primary := ""
			if d.GetPrimary() {
				primary = " (primary)"
			}
			fmt.Fprintf(w, "domain\t%s%s\n", d.GetHost(), primary)
		}
		for _, k := range sortedKeys(t.GetLabels()) {
			fmt.Fprintf(w, "label\t%s=%s\n", k, t.GetLabels()[k])
		}
		fmt.Fprintf(w, "created\t%s\n", ts(t.GetCreateTime()))
	}
}

func (c *cli) tenantsCreate(ctx context.Context, args []string) error {
	var (
		display, placement string
		labels             listFlag
	)
	pos, err := flags("tenants create", args, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&display, "display-name", "", "display name")
		fs.StringVar(&placement, "placement", "", "placement (database) for the schema")
		fs.Var(&labels, "label", "key=value (repeatable)")
	})
	if err != nil {
		return err
	}
	l, err := labelsOf(labels)
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.tenants.CreateTenant(ctx, &registryv1.CreateTenantRequest{
		TenantId:  pos[0],
		Tenant:    &registryv1.Tenant{DisplayName: display, Placement: placement, Labels: l},
		RequestId: uuid.NewString(),
	})
	if err != nil {
		return err
	}
	return c.print(resp, c.printTenant(resp.GetTenant()))
}

func (c *cli) tenantsList(ctx context.Context, args []string) error {
	var (
		filter      string
		showDeleted bool
	)
	if _, err := flags("tenants list", args, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&filter, "filter", "", `e.g. 'state = ACTIVE AND labels.tier = "gold"'`)
		fs.BoolVar(&showDeleted, "show-deleted", false, "include deleted tenants")
	}); err != nil {
		return err
	}
	all := &registryv1.ListTenantsResponse{}
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		resp, err := c.tenants.ListTenants(cctx, &registryv1.ListTenantsRequest{PageSize: 1000, PageToken: token, Filter: filter, ShowDeleted: showDeleted})
		cancel()
		if err != nil {
			return err
		}
		all.Tenants = append(all.Tenants, resp.GetTenants()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return c.print(all, func(w io.Writer) {
		fmt.Fprintln(w, "SLUG\tSTATE\tDISPLAY NAME\tPLACEMENT")
		for _, t := range all.GetTenants() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.GetSlug(), strings.TrimPrefix(t.GetState().String(), "STATE_"), t.GetDisplayName(), t.GetPlacement())
		}
	})
}

func (c *cli) tenantsGet(ctx context.Context, args []string) error {
	pos, err := flags("tenants get", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.tenants.GetTenant(ctx, &registryv1.GetTenantRequest{Name: tenantName(pos[0])})
	if err != nil {
		return err
	}
	return c.print(resp, c.printTenant(resp.GetTenant()))
}

// lifecycle runs one of the lifecycle RPCs on a slug.
func (c *cli) lifecycle(ctx context.Context, name string, args []string, force *bool, call func(ctx context.Context, tenant string) (*registryv1.Tenant, error)) error {
	pos, err := flags(name, args, 1, func(fs *flag.FlagSet) {
		if force != nil {
			fs.BoolVar(force, "force", false, "purge at once")
		}
	})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	t, err := call(ctx, tenantName(pos[0]))
	if err != nil {
		return err
	}
	return c.print(t, c.printTenant(t))
}

func (c *cli) tenantsSuspend(ctx context.Context, args []string) error {
	return c.lifecycle(ctx, "tenants suspend", args, nil, func(ctx context.Context, n string) (*registryv1.Tenant, error) {
		r, err := c.tenants.SuspendTenant(ctx, &registryv1.SuspendTenantRequest{Name: n})
		return r.GetTenant(), err
	})
}

func (c *cli) tenantsResume(ctx context.Context, args []string) error {
	return c.lifecycle(ctx, "tenants resume", args, nil, func(ctx context.Context, n string) (*registryv1.Tenant, error) {
		r, err := c.tenants.ResumeTenant(ctx, &registryv1.ResumeTenantRequest{Name: n})
		return r.GetTenant(), err
	})
}

func (c *cli) tenantsDelete(ctx context.Context, args []string) error {
	var force bool
	return c.lifecycle(ctx, "tenants delete", args, &force, func(ctx context.Context, n string) (*registryv1.Tenant, error) {
		r, err := c.tenants.DeleteTenant(ctx, &registryv1.DeleteTenantRequest{Name: n, Force: force})
		return r.GetTenant(), err
	})
}

func (c *cli) tenantsUndelete(ctx context.Context, args []string) error {
	return c.lifecycle(ctx, "tenants undelete", args, nil, func(ctx context.Context, n string) (*registryv1.Tenant, error) {
		r, err := c.tenants.UndeleteTenant(ctx, &registryv1.UndeleteTenantRequest{Name: n})
		return r.GetTenant(), err
	})
}

func (c *cli) domainsAdd(ctx context.Context, args []string) error {
	var primary bool
	pos, err := flags("domains add", args, 2, func(fs *flag.FlagSet) { fs.BoolVar(&primary, "primary", false, "make it the primary domain") })
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.tenants.AddDomain(ctx, &registryv1.AddDomainRequest{Name: tenantName(pos[0]), Host: pos[1], Primary: primary})
	if err != nil {
		return err
	}
	return c.print(resp, c.printTenant(resp.GetTenant()))
}

func (c *cli) domainsRemove(ctx context.Context, args []string) error {
	pos, err := flags("domains remove", args, 2, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.tenants.RemoveDomain(ctx, &registryv1.RemoveDomainRequest{Name: tenantName(pos[0]), Host: pos[1]})
	if err != nil {
		return err
	}
	return c.print(resp, c.printTenant(resp.GetTenant()))
}

func (c *cli) componentsRegister(ctx context.Context, args []string) error {
	var display string
	pos, err := flags("components register", args, 2, func(fs *flag.FlagSet) { fs.StringVar(&display, "display-name", "", "display name") })
	if err != nil {
		return err
	}
	// The same file layout every Tenantry service embeds: NNNN_name.sql.
	migs, err := tenantdb.LoadMigrations(os.DirFS(pos[1]), ".")
	if err != nil {
		return usagef("components register: %v", err)
	}
	comp := &registryv1.Component{Name: "components/" + pos[0], DisplayName: display}
	for _, m := range migs {
		comp.Migrations = append(comp.Migrations, &registryv1.Migration{Version: int32(m.Version), Name: m.Name, Sql: m.SQL})
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.components.RegisterComponent(ctx, &registryv1.RegisterComponentRequest{Component: comp})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		added := "nothing (already registered)"
		if len(resp.GetAddedVersions()) > 0 {
			added = fmt.Sprintf("versions %v", resp.GetAddedVersions())
		}
		fmt.Fprintf(w, "%s\tlatest version %d; added %s\n", resp.GetComponent().GetName(), resp.GetComponent().GetLatestVersion(), added)
		fmt.Fprintln(w, "existing tenants get new versions with 'tenantry migrate'")
	})
}

func (c *cli) componentsList(ctx context.Context, args []string) error {
	if _, err := flags("components list", args, 0, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.components.ListComponents(ctx, &registryv1.ListComponentsRequest{})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		fmt.Fprintln(w, "COMPONENT\tLATEST\tUPDATED")
		for _, comp := range resp.GetComponents() {
			fmt.Fprintf(w, "%s\t%d\t%s\n", strings.TrimPrefix(comp.GetName(), "components/"), comp.GetLatestVersion(), ts(comp.GetUpdateTime()))
		}
	})
}

func (c *cli) componentsGet(ctx context.Context, args []string) error {
	pos, err := flags("components get", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.components.GetComponent(ctx, &registryv1.GetComponentRequest{Name: "components/" + pos[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		fmt.Fprintf(w, "%s\tlatest version %d\n", resp.GetComponent().GetName(), resp.GetComponent().GetLatestVersion())
		for _, m := range resp.GetComponent().GetMigrations() {
			fmt.Fprintf(w, "%04d_%s\tsha256 %s\n", m.GetVersion(), m.GetName(), m.GetChecksum())
		}
	})
}

// componentsCredential prints the bare token, so that a script can take
// it as is: TENANTRY_COMPONENT_TOKEN=$(bin/tenantry components credential notes).
func (c *cli) componentsCredential(ctx context.Context, args []string) error {
	pos, err := flags("components credential", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.components.GetComponentCredential(ctx, &registryv1.GetComponentCredentialRequest{Name: "components/" + pos[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) { fmt.Fprintln(w, resp.GetToken()) })
}

func (c *cli) componentsVersions(ctx context.Context, args []string) error {
	pos, err := flags("components versions", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.components.ListTenantComponents(ctx, &registryv1.ListTenantComponentsRequest{Parent: tenantName(pos[0])})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		fmt.Fprintln(w, "COMPONENT\tVERSION\tLATEST\tAPPLIED")
		for _, tc := range resp.GetComponents() {
			name := tc.GetName()[strings.LastIndex(tc.GetName(), "/")+1:]
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", name, tc.GetVersion(), tc.GetLatestVersion(), ts(tc.GetApplyTime()))
		}
	})
}

func (c *cli) migrate(ctx context.Context, args []string) error {
	var (
		comps       listFlag
		tenants     listFlag
		dryRun      bool
		noWait      bool
		concurrency int
		lockTimeout time.Duration
	)
	if _, err := flags("migrate", args, 0, func(fs *flag.FlagSet) {
		fs.Var(&comps, "component", "a component to migrate (repeatable; all when none)")
		fs.Var(&tenants, "tenant", "a tenant to migrate, by slug (repeatable; all when none)")
		fs.BoolVar(&dryRun, "dry-run", false, "only list what would change")
		fs.BoolVar(&noWait, "no-wait", false, "print the operation and return at once")
		fs.IntVar(&concurrency, "concurrency", 0, "tenants at once (default 4)")
		fs.DurationVar(&lockTimeout, "lock-timeout", 0, "how long a tenant's migration waits for a lock (default 5s)")
	}); err != nil {
		return err
	}
	req := &registryv1.MigrateTenantsRequest{DryRun: dryRun, Concurrency: int32(concurrency)}
	if lockTimeout > 0 {
		req.LockTimeout = durationpb.New(lockTimeout)
	}
	for _, id := range comps {
		req.Components = append(req.Components, "components/"+id)
	}
	for _, slug := range tenants {
		req.Tenants = append(req.Tenants, "tenants/"+slug)
	}
	cctx, cancel := c.call(ctx)
	resp, err := c.components.MigrateTenants(cctx, req)
	cancel()
	if err != nil {
		return err
	}
	return c.started(ctx, resp.GetOperation(), noWait)
}

// started shows an operation a command began: printed at once with
// --no-wait, else followed (see follow).
func (c *cli) started(ctx context.Context, op *registryv1.Operation, noWait bool) error {
	if noWait {
		return c.print(op, c.printOperation(op))
	}
	return c.follow(ctx, op.GetName())
}

// follow waits for an operation, drawing its progress on stderr, then
// prints it; failed tenants make the command fail.
func (c *cli) follow(ctx context.Context, name string) error {
	var op *registryv1.Operation
	for {
		cctx, cancel := c.call(ctx)
		resp, err := c.operations.WaitOperation(cctx, &registryv1.WaitOperationRequest{Name: name, Timeout: durationpb.New(time.Second)})
		cancel()
		if err != nil {
			return err
		}
		op = resp.GetOperation()
		if m := op.GetMoveMetadata(); m != nil {
			fmt.Fprintf(c.err, "\r%-70s", moveProgress(m))
			if moveSettled(op) {
				fmt.Fprintln(c.err)
				break
			}
			continue
		}
		md := op.GetMetadata()
		fmt.Fprintf(c.err, "\r%s %d/%d done, %d failed", progressBar(md.GetDone()+md.GetFailed(), md.GetTotal(), 30), md.GetDone(), md.GetTotal(), md.GetFailed())
		if op.GetDone() {
			fmt.Fprintln(c.err)
			break
		}
	}
	if err := c.print(op, c.printOperation(op)); err != nil {
		return err
	}
	switch {
	case op.GetError() != nil:
		return fmt.Errorf("%s (%s)", op.GetError().GetMessage(), op.GetError().GetReason())
	case op.GetMoveMetadata().GetPhase() == registryv1.MoveMetadata_PHASE_ABANDONED:
		return fmt.Errorf("the move was abandoned: the tenant stayed on %s", op.GetMoveMetadata().GetSourcePlacement())
	case len(op.GetResult().GetFailures()) > 0:
		return errMigrationFailures
	}
	return nil
}

func progressBar(n, total int32, width int) string {
	filled := width
	if total > 0 {
		filled = int(int64(n) * int64(width) / int64(total))
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func (c *cli) printOperation(op *registryv1.Operation) func(w io.Writer) {
	return func(w io.Writer) {
		md := op.GetMetadata()
		state := "running"
		switch {
		case op.GetError() != nil:
			state = "ended: " + op.GetError().GetMessage()
		case op.GetDone():
			state = "done"
		}
		fmt.Fprintf(w, "operation\t%s\n", op.GetName())
		fmt.Fprintf(w, "state\t%s\n", state)
		if op.GetMoveMetadata() != nil {
			printMove(w, op)
			return
		}
		fmt.Fprintf(w, "components\t%s\n", strings.Join(md.GetComponents(), ", "))
		fmt.Fprintf(w, "tenants\t%d behind, %d done, %d failed\n", md.GetTotal(), md.GetDone(), md.GetFailed())
		for _, p := range op.GetResult().GetPlanned() {
			fmt.Fprintf(w, "would migrate\t%s %s %d → %d\n", p.GetTenant(), p.GetComponent(), p.GetFromVersion(), p.GetToVersion())
		}
		for _, f := range op.GetResult().GetFailures() {
			fmt.Fprintf(w, "failed\t%s %s version %d: %s\n", f.GetTenant(), f.GetComponent(), f.GetVersion(), f.GetMessage())
		}
	}
}

func (c *cli) operationsList(ctx context.Context, args []string) error {
	if _, err := flags("operations list", args, 0, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.operations.ListOperations(ctx, &registryv1.ListOperationsRequest{PageSize: 50})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		fmt.Fprintln(w, "OPERATION\tKIND\tDONE\tTENANTS\tCREATED")
		for _, op := range resp.GetOperations() {
			id := strings.TrimPrefix(op.GetName(), "operations/")
			if m := op.GetMoveMetadata(); m != nil {
				fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\n", id, op.GetKind(), op.GetDone(), moveProgress(m), ts(m.GetCreateTime()))
				continue
			}
			md := op.GetMetadata()
			fmt.Fprintf(w, "%s\t%s\t%t\t%d/%d (%d failed)\t%s\n", id, op.GetKind(),
				op.GetDone(), md.GetDone(), md.GetTotal(), md.GetFailed(), ts(md.GetCreateTime()))
		}
	})
}

func opName(id string) string {
	if strings.HasPrefix(id, "operations/") {
		return id
	}
	return "operations/" + id
}

func (c *cli) operationsGet(ctx context.Context, args []string) error {
	pos, err := flags("operations get", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.operations.GetOperation(ctx, &registryv1.GetOperationRequest{Name: opName(pos[0])})
	if err != nil {
		return err
	}
	return c.print(resp.GetOperation(), c.printOperation(resp.GetOperation()))
}

func (c *cli) operationsWait(ctx context.Context, args []string) error {
	pos, err := flags("operations wait", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	return c.follow(ctx, opName(pos[0]))
}

func (c *cli) operationsCancel(ctx context.Context, args []string) error {
	pos, err := flags("operations cancel", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.operations.CancelOperation(ctx, &registryv1.CancelOperationRequest{Name: opName(pos[0])})
	if err != nil {
		return err
	}
	return c.print(resp.GetOperation(), c.printOperation(resp.GetOperation()))
}

// ts formats a timestamp in local time, "-" when unset.
func ts(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().Local().Format(time.DateTime)
}
