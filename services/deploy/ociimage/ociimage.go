// Package ociimage assembles a container image from files alone, without a
// Docker daemon and without a base image: one layer holding exactly the
// files given, a config saying how to run them, written as an OCI image
// layout directory that crane, skopeo and podman read.
//
// The image is reproducible: every timestamp in the layer and the config is
// the Created time given, entries are written in sorted order with fixed
// owners and no user or group names, so the same files and Spec give the
// same digest on any machine.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefNameAnnotation names an image in an OCI layout's index.json; skopeo
// and podman select it with oci:DIR:NAME.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// File is a regular file of the layer.
type File struct {
	Path     string // absolute, slash-separated: /usr/local/bin/identity
	Data     []byte
	Mode     int64 // permission bits, e.g. 0o555
	UID, GID int
}

// Dir is a directory of the layer with an owner or mode of its own. Parent
// directories of files are added as root-owned 0755 without being listed.
type Dir struct {
	Path     string
	Mode     int64
	UID, GID int
}

// Spec describes one image.
type Spec struct {
	Files []File
	Dirs  []Dir

	// Created is the time of every entry of the layer, of the config and
	// of its history: SOURCE_DATE_EPOCH, for reproducible images.
	Created time.Time
	// OS and Architecture are the platform (linux, amd64).
	OS, Architecture string

	User         string // uid:gid
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	ExposedPorts []string // 50051/tcp
	StopSignal   string
	Labels       map[string]string
}

// Build assembles the image Spec describes.
func Build(spec Spec) (v1.Image, error) {
	if spec.OS == "" || spec.Architecture == "" {
		return nil, errors.New("ociimage: OS and Architecture are required")
	}
	if len(spec.Entrypoint) == 0 {
		return nil, errors.New("ociimage: an Entrypoint is required")
	}
	created := spec.Created.UTC().Truncate(time.Second)
	layerTar, err := layerTar(spec.Files, spec.Dirs, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "tenantry.dev/deploy/ociimage",
			Comment:   "static binaries on an empty base",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ociimage: append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("ociimage: config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS = spec.OS
	cfg.Architecture = spec.Architecture
	cfg.Author = ""
	cfg.Config = v1.Config{
		User:       spec.User,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
		StopSignal: spec.StopSignal,
		Labels:     spec.Labels,
	}
	if len(spec.ExposedPorts) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.ExposedPorts {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("ociimage: set config: %w", err)
	}
	return img, nil
}

// layerTar writes the files and directories as an uncompressed tar, parents
// before children, each entry at the same time and without names of users.
func layerTar(files []File, dirs []Dir, created time.Time) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	entries := map[string]entry{}
	addParents := func(p string) {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			name := strings.TrimPrefix(dir, "/") + "/"
			if _, ok := entries[name]; !ok {
				entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
			}
		}
	}
	clean := func(p string) (string, error) {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return "", fmt.Errorf("ociimage: path %q must be absolute and clean", p)
		}
		return p, nil
	}
	for _, d := range dirs {
		p, err := clean(d.Path)
		if err != nil {
			return nil, err
		}
		addParents(p)
		entries[strings.TrimPrefix(p, "/")+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: d.Mode, Uid: d.UID, Gid: d.GID}}
	}
	for _, f := range files {
		p, err := clean(f.Path)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(p, "/")
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("ociimage: %s is given twice", p)
		}
		addParents(p)
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Size: int64(len(f.Data))}, data: f.Data}
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names) // "etc/" sorts before "etc/passwd": parents come first

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		e := entries[name]
		e.hdr.ModTime = created
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("ociimage: tar %s: %w", name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("ociimage: tar %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout writes img as the only image of a fresh OCI image layout at
// dir (anything there before is removed, so that writing the same image
// twice gives the same directory), named refName in index.json.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("ociimage: layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: refName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("ociimage: layout %s: %w", dir, err)
	}
	return nil
}
