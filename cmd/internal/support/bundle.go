package support

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"time"
)

// BundleFile is one file of a support bundle.
type BundleFile struct {
	Name string // a plain name, such as "status.json"
	Data []byte
}

// WriteBundle writes files as a gzipped tar archive to w, each under the
// directory dir, mode 0600, dated at. The caller decides what goes in:
// only views of this package, which hold no personal data.
func WriteBundle(w io.Writer, dir string, at time.Time, files []BundleFile) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o700, ModTime: at}); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for _, f := range files {
		if path.Base(f.Name) != f.Name || f.Name == "." || f.Name == ".." {
			return fmt.Errorf("bundle: bad file name %q", f.Name)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + f.Name, Mode: 0o600, Size: int64(len(f.Data)), ModTime: at}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}
