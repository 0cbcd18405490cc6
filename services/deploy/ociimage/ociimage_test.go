package ociimage

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLayerTar(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("parents come before their files, all at the given time", func(t *testing.T) {
		t.Parallel()
		b, err := layerTar([]File{
			{Path: "/usr/local/bin/app", Data: []byte("x"), Mode: 0o555},
			{Path: "/etc/passwd", Data: []byte("p"), Mode: 0o644},
		}, []Dir{{Path: "/home/nonroot", Mode: 0o700, UID: 65532, GID: 65532}}, created)
		require.NoError(t, err)
		var names []string
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			names = append(names, hdr.Name)
			require.True(t, hdr.ModTime.Equal(created), hdr.Name)
			if hdr.Name == "home/nonroot/" {
				require.Equal(t, 65532, hdr.Uid)
				require.Equal(t, int64(0o700), hdr.Mode)
			}
		}
		require.Equal(t, []string{"etc/", "etc/passwd", "home/", "home/nonroot/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"}, names)
	})
	t.Run("the same input gives the same bytes", func(t *testing.T) {
		t.Parallel()
		files := []File{{Path: "/b", Data: []byte("b")}, {Path: "/a", Data: []byte("a")}}
		first, err := layerTar(files, nil, created)
		require.NoError(t, err)
		second, err := layerTar([]File{files[1], files[0]}, nil, created)
		require.NoError(t, err)
		require.Equal(t, first, second, "the order given does not matter")
	})
	t.Run("relative, unclean and repeated paths are refused", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"etc/passwd", "/etc/../passwd", "/etc/", "/"} {
			_, err := layerTar([]File{{Path: p}}, nil, created)
			require.Error(t, err, p)
		}
		_, err := layerTar([]File{{Path: "/a"}, {Path: "/a"}}, nil, created)
		require.ErrorContains(t, err, "given twice")
	})
}

func TestBuildRefusesAnIncompleteSpec(t *testing.T) {
	t.Parallel()
	_, err := Build(Spec{OS: "linux", Architecture: "amd64"})
	require.ErrorContains(t, err, "Entrypoint")
	_, err = Build(Spec{Entrypoint: []string{"/app"}})
	require.ErrorContains(t, err, "OS and Architecture")
}
