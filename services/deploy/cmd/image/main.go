// Command image builds Tenantry's container images without a Docker
// daemon: static binaries (CGO off, -trimpath, no build id) on an empty
// base, run as 65532:65532, with OCI labels, each written as an OCI image
// layout directory <out>/<service>, and prints each image's digest.
//
//	go run ./services/deploy/cmd/image -out bin/images -version v1.2.3 -revision $(git rev-parse HEAD)
//
// The same sources, flags and SOURCE_DATE_EPOCH give the same digests.
// It runs from the repository root (make image does).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"tenantry.dev/deploy/images"
	"tenantry.dev/deploy/ociimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		out, goarch, caBundle, epoch, goTool string
		md                                   images.Metadata
	)
	fs.StringVar(&out, "out", "bin/images", "directory of the OCI layouts, one per service")
	fs.StringVar(&goarch, "goarch", "amd64", "architecture of the images (linux only)")
	fs.StringVar(&caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates to include, for TLS to PostgreSQL and SMTP; empty includes none")
	fs.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time of every timestamp in the images (default $SOURCE_DATE_EPOCH)")
	fs.StringVar(&md.Version, "version", "dev", "org.opencontainers.image.version, also the name of the image in the layout")
	fs.StringVar(&md.Revision, "revision", "unknown", "org.opencontainers.image.revision: the commit")
	fs.StringVar(&md.Source, "source", "https://tenantry.dev", "org.opencontainers.image.source: the repository's URL")
	fs.StringVar(&md.Licenses, "licenses", "NOASSERTION", "org.opencontainers.image.licenses (SPDX)")
	fs.StringVar(&goTool, "go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if epoch == "" {
		return errors.New("set -source-date-epoch or SOURCE_DATE_EPOCH (make image uses the commit's time): images are reproducible only with a fixed time")
	}
	seconds, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("source date epoch %q: %w", epoch, err)
	}
	md.Created = time.Unix(seconds, 0).UTC()
	var ca []byte
	if caBundle != "" {
		if ca, err = os.ReadFile(caBundle); err != nil {
			return fmt.Errorf("CA bundle (-ca-bundle \"\" includes none): %w", err)
		}
	}

	binDir, err := os.MkdirTemp("", "tenantry-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	catalog := images.Catalog()
	if err := images.BuildBinaries(ctx, goTool, ".", goarch, binDir, catalog); err != nil {
		return err
	}
	for _, img := range catalog {
		built, err := images.Build(img, binDir, goarch, ca, md)
		if err != nil {
			return err
		}
		dir := filepath.Join(out, img.Service)
		if err := ociimage.WriteLayout(dir, built, img.Name()+":"+md.Version); err != nil {
			return err
		}
		digest, err := built.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%-16s %s  %s (oci:%s:%s)\n", img.Service, digest, dir, dir, img.Name()+":"+md.Version)
	}
	return nil
}
