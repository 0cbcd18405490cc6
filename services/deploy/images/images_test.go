package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"tenantry.dev/deploy/images"
	"tenantry.dev/deploy/ociimage"
)

// binDir holds every image's binaries, built once for the whole test run
// (for this machine's architecture, so the manifest tests could run them).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tenantry-images-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := images.BuildBinaries(context.Background(), "go", repoRoot(), runtime.GOARCH, dir, images.Catalog()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		return m.Run()
	}())
}

// repoRoot is the directory holding go.work.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("no go.work above the test's directory")
		}
		dir = parent
	}
}

var metadata = images.Metadata{
	Version:  "v1.2.3",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Source:   "https://example.com/tenantry",
	Licenses: "Apache-2.0",
	Created:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
}

var caBundle = []byte("-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n")

// written builds img, writes it as an OCI layout and reads it back the way
// crane or skopeo would: the test looks at what lands on disk.
func written(t *testing.T, img images.Image, bins string, md images.Metadata) (string, v1.Image) {
	t.Helper()
	built, err := images.Build(img, bins, runtime.GOARCH, caBundle, md)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), img.Service)
	require.NoError(t, ociimage.WriteLayout(dir, built, img.Name()+":"+md.Version))
	index, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	manifest, err := index.IndexManifest()
	require.NoError(t, err)
	require.Len(t, manifest.Manifests, 1, "the layout holds one image")
	desc := manifest.Manifests[0]
	require.Equal(t, types.OCIManifestSchema1, desc.MediaType)
	require.Equal(t, img.Name()+":"+md.Version, desc.Annotations[ociimage.RefNameAnnotation])
	read, err := index.Image(desc.Digest)
	require.NoError(t, err)
	return dir, read
}

type layerEntry struct {
	hdr  *tar.Header
	data []byte
}

func layerEntries(t *testing.T, img v1.Image) map[string]layerEntry {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1, "one layer on an empty base")
	mt, err := layers[0].MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCILayer, mt)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	entries := map[string]layerEntry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		entries["/"+strings.TrimSuffix(hdr.Name, "/")] = layerEntry{hdr: hdr, data: data}
	}
	return entries
}

func TestImages(t *testing.T) {
	t.Parallel()
	for _, img := range images.Catalog() {
		t.Run(img.Service, func(t *testing.T) {
			t.Parallel()
			_, read := written(t, img, binDir, metadata)
			cfg, err := read.ConfigFile()
			require.NoError(t, err)
			m, err := read.Manifest()
			require.NoError(t, err)
			require.Equal(t, types.OCIConfigJSON, m.Config.MediaType)

			t.Run("runs as the non-root user 65532", func(t *testing.T) {
				require.Equal(t, "65532:65532", cfg.Config.User)
			})
			t.Run("starts the service's binary", func(t *testing.T) {
				require.Equal(t, []string{"/usr/local/bin/" + img.Service}, cfg.Config.Entrypoint)
				require.Empty(t, cfg.Config.Cmd)
			})
			t.Run("exposes the service's ports", func(t *testing.T) {
				var want []string
				for _, p := range img.Ports {
					want = append(want, fmt.Sprintf("%d/tcp", p))
				}
				var got []string
				for p := range cfg.Config.ExposedPorts {
					got = append(got, p)
				}
				require.ElementsMatch(t, want, got)
			})
			t.Run("carries the OCI labels", func(t *testing.T) {
				require.Equal(t, map[string]string{
					"org.opencontainers.image.title":       img.Service,
					"org.opencontainers.image.description": img.Description,
					"org.opencontainers.image.source":      metadata.Source,
					"org.opencontainers.image.version":     metadata.Version,
					"org.opencontainers.image.revision":    metadata.Revision,
					"org.opencontainers.image.licenses":    metadata.Licenses,
					"org.opencontainers.image.created":     "2026-01-02T03:04:05Z",
				}, cfg.Config.Labels)
				require.NotEmpty(t, img.Description)
			})
			t.Run("is dated at the source date, for the platform", func(t *testing.T) {
				require.True(t, cfg.Created.Equal(metadata.Created), "created %s", cfg.Created)
				require.Equal(t, "linux", cfg.OS)
				require.Equal(t, runtime.GOARCH, cfg.Architecture)
				for _, h := range cfg.History {
					require.True(t, h.Created.Equal(metadata.Created))
				}
			})

			entries := layerEntries(t, read)
			t.Run("has no shell and nothing but what the service needs", func(t *testing.T) {
				var files []string
				for name, e := range entries {
					require.True(t, e.hdr.ModTime.Equal(metadata.Created), "%s is dated %s", name, e.hdr.ModTime)
					require.Empty(t, e.hdr.Uname+e.hdr.Gname, "%s names its owner", name)
					base := path.Base(name)
					require.NotContains(t, []string{"sh", "bash", "ash", "dash", "busybox"}, base, "%s is a shell", name)
					if e.hdr.Typeflag == tar.TypeReg {
						files = append(files, name)
					}
				}
				require.NotContains(t, entries, "/bin/sh")
				require.NotContains(t, entries, "/bin")
				want := []string{"/etc/passwd", "/etc/group", images.CABundlePath}
				for _, b := range img.Binaries {
					want = append(want, "/usr/local/bin/"+b.Name)
				}
				require.ElementsMatch(t, want, files)
				require.Equal(t, caBundle, entries[images.CABundlePath].data)
			})
			t.Run("gives the user a home and no login shell", func(t *testing.T) {
				home := entries["/home/nonroot"].hdr
				require.NotNil(t, home)
				require.Equal(t, 65532, home.Uid)
				require.Contains(t, string(entries["/etc/passwd"].data), "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
				require.Contains(t, string(entries["/etc/group"].data), "nonroot:x:65532:\n")
			})
			for _, b := range img.Binaries {
				t.Run("holds "+b.Name+", static and read-only", func(t *testing.T) {
					e, ok := entries["/usr/local/bin/"+b.Name]
					require.True(t, ok)
					want, err := os.ReadFile(filepath.Join(binDir, b.Name))
					require.NoError(t, err)
					require.True(t, bytes.Equal(want, e.data), "the layer holds the built binary")
					require.Equal(t, 0, e.hdr.Uid, "owned by root")
					require.Equal(t, int64(0o555), e.hdr.Mode, "executable, writable by no one")
					requireStatic(t, e.data)
				})
			}
		})
	}
}

// requireStatic fails unless data is an ELF executable for this machine
// that needs no dynamic loader and no shared library.
func requireStatic(t *testing.T, data []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	defer f.Close()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	if want, ok := machines[runtime.GOARCH]; ok {
		require.Equal(t, want, f.Machine)
	}
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "asks for a dynamic loader")
		require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "is dynamically linked")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs)
}

// The same sources built twice give the same image digest; another source
// date gives another (so the comparison can tell).
func TestImagesAreReproducible(t *testing.T) {
	t.Parallel()
	notes := images.Catalog()[2]
	require.Equal(t, "notes", notes.Service)
	again := t.TempDir()
	require.NoError(t, images.BuildBinaries(context.Background(), "go", repoRoot(), runtime.GOARCH, again, []images.Image{notes}))

	dirA, first := written(t, notes, binDir, metadata)
	dirB, second := written(t, notes, again, metadata)
	d1, err := first.Digest()
	require.NoError(t, err)
	d2, err := second.Digest()
	require.NoError(t, err)
	require.Equal(t, d1, d2, "a second build of the same sources")
	requireSameTree(t, dirA, dirB)

	later := metadata
	later.Created = metadata.Created.Add(time.Second)
	_, third := written(t, notes, binDir, later)
	d3, err := third.Digest()
	require.NoError(t, err)
	require.NotEqual(t, d1, d3, "another source date")
}

// requireSameTree fails unless the two directories hold the same files
// with the same bytes.
func requireSameTree(t *testing.T, a, b string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			files[rel], err = os.ReadFile(p)
			return err
		}))
		return files
	}
	fa, fb := read(a), read(b)
	require.Equal(t, len(fa), len(fb))
	for name, data := range fa {
		require.True(t, bytes.Equal(data, fb[name]), "%s differs", name)
	}
}

// The Dockerfile builds every image's binaries, from packages that exist,
// and starts each with the entrypoint make image gives it.
func TestDockerfileBuildsEveryImage(t *testing.T) {
	t.Parallel()
	root := repoRoot()
	text, err := os.ReadFile(filepath.Join(root, "deploy/docker/Dockerfile"))
	require.NoError(t, err)
	dockerfile := string(text)
	stages := regexp.MustCompile(`(?m)^FROM \$\{BASE\} AS image-([a-z-]+)$`).FindAllStringSubmatch(dockerfile, -1)
	var services []string
	for _, s := range stages {
		services = append(services, s[1])
	}
	var want []string
	for _, img := range images.Catalog() {
		want = append(want, img.Service)
		t.Run(img.Service, func(t *testing.T) {
			stage := dockerfile[strings.Index(dockerfile, "AS image-"+img.Service+"\n"):]
			stage = stage[:strings.Index(stage, "\nENTRYPOINT")+len(img.Entrypoint())+20]
			require.Contains(t, stage, `ENTRYPOINT ["`+img.Entrypoint()+`"]`)
			for _, b := range img.Binaries {
				require.Contains(t, dockerfile, b.Package, "the build stage builds %s", b.Name)
				require.Contains(t, stage, "/out/"+b.Name, "the image copies %s", b.Name)
				main, err := os.ReadFile(filepath.Join(root, b.Package, "main.go"))
				require.NoError(t, err, "%s is a package of the repository", b.Package)
				require.Contains(t, string(main), "package main")
			}
			for _, p := range img.Ports {
				require.Regexp(t, fmt.Sprintf(`EXPOSE .*\b%d\b`, p), stage)
			}
		})
	}
	require.True(t, slices.Equal(want, services), "one final stage per image: %v", services)
	require.Contains(t, dockerfile, "USER 65532:65532")
	require.Contains(t, dockerfile, "FROM image-${SERVICE}")
	require.Contains(t, dockerfile, `-trimpath -buildvcs=false -ldflags="-s -w -buildid="`)
	require.Contains(t, dockerfile, "CGO_ENABLED=0")
}
