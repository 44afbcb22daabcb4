#!/usr/bin/env bash
# packaging/build-deb.sh [OUTDIR] - build the portcullis .deb into OUTDIR
# (default dist/). `make deb` runs it; so does packaging/deb_test.go, with a
# scratch OUTDIR.
#
# The binary is built as `make build` builds it (-trimpath, -s -w, the
# version from `git describe` in internal/buildinfo.Version) plus
# CGO_ENABLED=0 (static: no libc dependency) and the commit in
# internal/buildinfo.Commit. nfpm runs through `go run module@version`, so
# it never enters go.mod; the only network it needs is the Go module proxy,
# once, to fill the module cache.
#
# Environment: GO (go), VERSION (git describe), GOARCH (go env GOARCH),
# NFPM_VERSION (v2.45.2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${1:-dist}
GO=${GO:-go}
NFPM_VERSION=${NFPM_VERSION:-v2.45.2}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
GOARCH=${GOARCH:-$($GO env GOARCH)}
DEB_VERSION=$(packaging/deb-version.sh "$VERSION")
# Reproducible: every file's mtime is the commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH $GO build -trimpath \
	-ldflags "-s -w -X github.com/portcullis-lb/portcullis/internal/buildinfo.Version=$VERSION -X github.com/portcullis-lb/portcullis/internal/buildinfo.Commit=$COMMIT" \
	-o "$work/portcullis" ./cmd/portcullis

deb="$OUT/portcullis_${DEB_VERSION}_$(packaging/deb-version.sh --arch "$GOARCH").deb"
PORTCULLIS_BIN=$work/portcullis PORTCULLIS_DEB_VERSION=$DEB_VERSION PORTCULLIS_ARCH=$GOARCH \
	$GO run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" package \
	--config packaging/nfpm.yaml --packager deb --target "$deb" >&2
echo "$deb"
