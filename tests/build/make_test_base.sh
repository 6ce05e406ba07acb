#!/bin/sh
# Makes the Debian base image the build tests compile in: Debian 12 made by
# debootstrap from Debian's packages (minbase plus gcc and libc6-dev), with a
# user `app` added, trimmed of package caches and docs, and written as a
# `docker save` archive with plain tar and sha256sum, so the image under test
# is made without nemokit's own code.
#   make_test_base.sh OUT_DIR   ->  OUT_DIR/base.tar
# NEMOKIT_DEBIAN_MIRROR overrides the mirror (default: deb.debian.org).
set -eu
out=$1
mirror=${NEMOKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$out/rootfs
rm -rf "$rootfs" "$out/archive"
mkdir -p "$out/archive"

if ! command -v debootstrap >/dev/null; then
  echo "make_test_base.sh: debootstrap is not installed (scripts/setup-deps.sh installs it)" >&2
  exit 1
fi
if ! debootstrap --variant=minbase --include=gcc,libc6-dev bookworm "$rootfs" "$mirror" > "$out/debootstrap.log" 2>&1; then
  tail -20 "$out/debootstrap.log" >&2
  echo "make_test_base.sh: debootstrap from $mirror failed (log: $out/debootstrap.log)" >&2
  exit 1
fi

# What a container base leaves out: package caches, docs, device nodes and the
# host's resolv.conf and hostname (the runtime mounts its own /dev and /etc files).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/dev/* \
       "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname
# The unprivileged user the tests switch to (USER app).
echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> "$rootfs/etc/passwd"
echo 'app:x:1000:' >> "$rootfs/etc/group"
echo 'app:*:19000:0:99999:7:::' >> "$rootfs/etc/shadow"
mkdir -p "$rootfs/home/app"
chown 1000:1000 "$rootfs/home/app"
find "$rootfs" -exec touch -h -d @1700000000 {} +

# docker save layout: manifest.json, <config>.json, <layer>/layer.tar
mkdir -p "$out/archive/layer"
tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C "$rootfs" -cf "$out/archive/layer/layer.tar" .
diff_id=sha256:$(sha256sum "$out/archive/layer/layer.tar" | cut -d' ' -f1)
cat > "$out/archive/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["$diff_id"]},"history":[{"created":"2023-11-14T22:13:20Z","created_by":"make_test_base.sh: debootstrap --variant=minbase --include=gcc,libc6-dev bookworm"}]}
JSON
cfg=$(sha256sum "$out/archive/config.json" | cut -d' ' -f1)
mv "$out/archive/config.json" "$out/archive/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["nemokit-test-base:latest"],"Layers":["layer/layer.tar"]}]\n' "$cfg" > "$out/archive/manifest.json"
tar -C "$out/archive" -cf "$out/base.tar.tmp" manifest.json "$cfg.json" layer
mv "$out/base.tar.tmp" "$out/base.tar"
rm -rf "$out/archive"
