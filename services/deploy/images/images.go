// Package images knows Tenantry's container images: which service goes in
// which image, with which binaries, ports and labels, and how the static
// binaries are built. ociimage does the assembling; this package holds
// everything that is Tenantry's.
package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"tenantry.dev/deploy/ociimage"
)

// Repository is the image name prefix: images are <Repository>/<service>,
// the names deploy/kubernetes refers to.
const Repository = "tenantry"

// NonRoot is the user (and group) every image runs as: distroless's
// "nonroot", so that volumes prepared for distroless images fit.
const NonRoot = 65532

// BinDir is where an image's binaries are.
const BinDir = "/usr/local/bin"

// CABundlePath is where an image keeps the CA certificates it was given,
// Debian's path, which Go's crypto/x509 reads first.
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// Binary is a program of an image, built from a main package.
type Binary struct {
	Name    string // file name in BinDir
	Package string // Go package path relative to the repository root
}

// Image is one service's image.
type Image struct {
	Service     string   // the service, and the image's name under Repository
	Description string   // org.opencontainers.image.description
	Binaries    []Binary // the first is the entrypoint
	Ports       []int    // TCP ports the service listens on in deploy/kubernetes (gRPC first)
}

// Name is the image's name without tag: tenantry/identity.
func (i Image) Name() string { return Repository + "/" + i.Service }

// Entrypoint is the path of the image's first binary.
func (i Image) Entrypoint() string { return path.Join(BinDir, i.Binaries[0].Name) }

// Catalog lists every image `make image` builds. The ports are those that
// deploy/kubernetes sets: the services' own defaults, plus 9090 where
// Prometheus metrics are served on a listener of their own.
func Catalog() []Image {
	return []Image{
		{
			Service:     "tenant-registry",
			Description: "Tenantry's control plane: tenants, their schemas and domains, host to tenant resolution; with the tenantry CLI",
			Binaries: []Binary{
				{Name: "tenant-registry", Package: "./services/tenant-registry/cmd/tenant-registry"},
				{Name: "tenantry", Package: "./services/tenant-registry/cmd/tenantry"},
			},
			Ports: []int{50051, 8081, 9090},
		},
		{
			Service:     "identity",
			Description: "Tenantry's accounts service: sign-up, login, sessions and tokens inside each tenant",
			Binaries:    []Binary{{Name: "identity", Package: "./services/identity/cmd/identity"}},
			Ports:       []int{50052, 8080, 9090},
		},
		{
			Service:     "notes",
			Description: "The example product service built on Tenantry",
			Binaries:    []Binary{{Name: "notes", Package: "./services/notes/cmd/notes"}},
			Ports:       []int{50053, 8083, 9090},
		},
	}
}

// Metadata is what the labels say about the build.
type Metadata struct {
	Version  string    // org.opencontainers.image.version: git describe
	Revision string    // org.opencontainers.image.revision: the commit
	Source   string    // org.opencontainers.image.source: the repository's URL
	Licenses string    // org.opencontainers.image.licenses: an SPDX expression
	Created  time.Time // every timestamp: SOURCE_DATE_EPOCH or the commit's time
}

// BuildBinaries builds every binary of the images, static and
// reproducible, for linux/goarch into dir: one `go build` run from the
// repository root, so shared packages compile once.
func BuildBinaries(ctx context.Context, goTool, repoRoot, goarch, dir string, images []Image) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", dir + string(filepath.Separator)}
	for _, img := range images {
		for _, b := range img.Binaries {
			args = append(args, b.Package)
		}
	}
	// Builds of the same binaries at once (the test packages of this
	// module run in parallel) wait for each other, so that the second
	// finds the first's packages in the build cache instead of compiling
	// them all again beside it.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "tenantry-deploy-build.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", goarch, err)
	}
	return nil
}

// lockFile holds an exclusive lock on path until the returned function is
// called.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil // closing releases the lock
}

// Spec is the image of img for goarch, from the binaries in binDir (as
// BuildBinaries leaves them) and, when caBundle is not empty, the CA
// certificates it holds.
func Spec(img Image, binDir, goarch string, caBundle []byte, md Metadata) (ociimage.Spec, error) {
	spec := ociimage.Spec{
		Created:      md.Created,
		OS:           "linux",
		Architecture: goarch,
		User:         fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Entrypoint:   []string{img.Entrypoint()},
		WorkingDir:   "/home/nonroot",
		StopSignal:   "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":       img.Service,
			"org.opencontainers.image.description": img.Description,
			"org.opencontainers.image.source":      md.Source,
			"org.opencontainers.image.version":     md.Version,
			"org.opencontainers.image.revision":    md.Revision,
			"org.opencontainers.image.licenses":    md.Licenses,
			"org.opencontainers.image.created":     md.Created.UTC().Format(time.RFC3339),
		},
		Files: []ociimage.File{
			// Names for the ids, so that tools showing owners (and
			// programs asking who they are) find them; no shell is given.
			{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
			{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		},
		Dirs: []ociimage.Dir{
			{Path: "/home/nonroot", Mode: 0o700, UID: NonRoot, GID: NonRoot},
			{Path: "/tmp", Mode: 0o1777},
		},
	}
	for _, p := range img.Ports {
		spec.ExposedPorts = append(spec.ExposedPorts, fmt.Sprintf("%d/tcp", p))
	}
	for _, b := range img.Binaries {
		data, err := os.ReadFile(filepath.Join(binDir, b.Name))
		if err != nil {
			return ociimage.Spec{}, fmt.Errorf("image %s: %w", img.Service, err)
		}
		// Owned by root and not writable: the user the image runs as
		// cannot replace its own program.
		spec.Files = append(spec.Files, ociimage.File{Path: path.Join(BinDir, b.Name), Mode: 0o555, Data: data})
	}
	if len(caBundle) > 0 {
		spec.Files = append(spec.Files, ociimage.File{Path: CABundlePath, Mode: 0o444, Data: caBundle})
	}
	return spec, nil
}

// Build assembles img's image (see Spec).
func Build(img Image, binDir, goarch string, caBundle []byte, md Metadata) (v1.Image, error) {
	spec, err := Spec(img, binDir, goarch, caBundle, md)
	if err != nil {
		return nil, err
	}
	return ociimage.Build(spec)
}
