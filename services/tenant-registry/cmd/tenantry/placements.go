package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

func placementName(name string) string { return "placements/" + name }

// policyOf says a placement's policy in words.
func policyOf(p *registryv1.Placement) string {
	policy := "open"
	if p.GetClosed() {
		policy = "closed"
	}
	if p.GetDedicated() {
		policy += ", dedicated"
	}
	return policy
}

func databaseOf(p *registryv1.Placement) string {
	db := p.GetDatabaseHost() + "/" + p.GetDatabaseName()
	if p.GetRegistryDatabase() {
		db += " (the registry's)"
	}
	return db
}

func (c *cli) printPlacement(p *registryv1.Placement) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "name\t%s\n", p.GetName())
		fmt.Fprintf(w, "policy\t%s\n", policyOf(p))
		fmt.Fprintf(w, "tenants\t%d\n", p.GetTenantCount())
		fmt.Fprintf(w, "database\t%s\n", databaseOf(p))
		fmt.Fprintf(w, "policy changed\t%s\n", ts(p.GetUpdateTime()))
	}
}

func (c *cli) placementsList(ctx context.Context, args []string) error {
	if _, err := flags("placements list", args, 0, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.placements.ListPlacements(ctx, &registryv1.ListPlacementsRequest{})
	if err != nil {
		return err
	}
	return c.print(resp, func(w io.Writer) {
		fmt.Fprintln(w, "PLACEMENT\tPOLICY\tTENANTS\tDATABASE")
		for _, p := range resp.GetPlacements() {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", strings.TrimPrefix(p.GetName(), "placements/"), policyOf(p), p.GetTenantCount(), databaseOf(p))
		}
	})
}

func (c *cli) placementsGet(ctx context.Context, args []string) error {
	pos, err := flags("placements get", args, 1, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.placements.GetPlacement(ctx, &registryv1.GetPlacementRequest{Name: placementName(pos[0])})
	if err != nil {
		return err
	}
	return c.print(resp, c.printPlacement(resp.GetPlacement()))
}

// placementsUpdate changes the policy fields given as flags, and only those.
func (c *cli) placementsUpdate(ctx context.Context, args []string) error {
	in := &registryv1.Placement{}
	var set *flag.FlagSet
	pos, err := flags("placements update", args, 1, func(fs *flag.FlagSet) {
		fs.BoolVar(&in.Closed, "closed", false, "take no new tenants (--closed=false opens it)")
		fs.BoolVar(&in.Dedicated, "dedicated", false, "one tenant, placed only by naming it (--dedicated=false shares it)")
		set = fs
	})
	if err != nil {
		return err
	}
	mask := &fieldmaskpb.FieldMask{}
	set.Visit(func(f *flag.Flag) { mask.Paths = append(mask.Paths, f.Name) })
	if len(mask.Paths) == 0 {
		return usagef("placements update: say what to change: --closed[=false] and/or --dedicated[=false]")
	}
	in.Name = placementName(pos[0])
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.placements.UpdatePlacement(ctx, &registryv1.UpdatePlacementRequest{Placement: in, UpdateMask: mask})
	if err != nil {
		return err
	}
	return c.print(resp, c.printPlacement(resp.GetPlacement()))
}
