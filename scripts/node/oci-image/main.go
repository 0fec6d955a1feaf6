// oci-image writes a one-layer container image as a docker-archive tarball (what
// `ctr images import` and `docker load` read) with go-containerregistry, from a folder
// that is the image's root file system and a JSON file holding the image config. No
// container engine is involved, so the project's image can be built where none runs.
//
//	oci-image -root DIR -config config.json -tag NAME:TAG -out image.tar
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	root := flag.String("root", "", "folder holding the image's root file system")
	configPath := flag.String("config", "", "JSON of the image config (Entrypoint, Cmd, Env, User, WorkingDir, Labels, ExposedPorts)")
	tag := flag.String("tag", "", "image reference, e.g. ambient-session-storage:dev")
	out := flag.String("out", "", "tarball to write")
	flag.Parse()
	if *root == "" || *configPath == "" || *tag == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	ref, err := name.NewTag(*tag)
	check(err)
	var config v1.Config
	raw, err := os.ReadFile(*configPath)
	check(err)
	check(json.Unmarshal(raw, &config))

	layerTar, err := tarFolder(*root)
	check(err)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	check(err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	check(err)
	file, err := img.ConfigFile()
	check(err)
	file = file.DeepCopy()
	file.Config = config
	file.Architecture = "amd64"
	file.OS = "linux"
	img, err = mutate.ConfigFile(img, file)
	check(err)
	check(tarball.WriteToFile(*out, ref, img))
}

// tarFolder archives root with every entry owned by root:root and a fixed mtime, so the
// same inputs give the same layer digest; modes (the executable bit) are kept.
func tarFolder(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		header, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		header.Name = filepath.ToSlash(rel)
		if entry.IsDir() {
			header.Name += "/"
		}
		header.Uid, header.Gid, header.Uname, header.Gname = 0, 0, "root", "root"
		header.ModTime, header.AccessTime, header.ChangeTime = epoch, time.Time{}, time.Time{}
		header.Format = tar.FormatPAX
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
