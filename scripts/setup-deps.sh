#!/usr/bin/env bash
# Installs every Debian package nemokit builds, tests and benchmarks with.
# Idempotent; safe to run on a fresh Debian 12 machine as root (or with sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(
  # toolchain and build
  build-essential cmake pkg-config ninja-build git ca-certificates
  # libraries the product links
  libboost-dev libboost-filesystem-dev libarchive-dev libsquashfs-dev zlib1g-dev
  libzstd-dev liblz4-dev liblzma-dev nlohmann-json3-dev libtomlplusplus-dev libyaml-cpp-dev
  libopenblas-dev libpcre2-dev libcurl4-openssl-dev libpng-dev libjpeg-dev
  # collectives between the CPU ranks of a training job (libmpi) and the launcher that starts
  # several local ranks as one MPI world (mpirun)
  libopenmpi-dev openmpi-bin
  # tests
  libgtest-dev libgmock-dev googletest python3
  # real peers the tests and benchmarks check against
  squashfs-tools squashfs-tools-ng buildah debootstrap slurm-wlm slurm-client munge hyperfine docker-registry apache2-utils openssl
  # an independent registry client: what `nemokit image push` put there, read back by skopeo
  skopeo
  # numpy reads our Megatron shards and packed SFT data back (run with Debian's python3); the
  # image test decodes Debian's Adwaita icons against libpng's own reader
  python3-numpy adwaita-icon-theme
  # a browser that renders `nemokit report`'s page in the tests (headless; 122 MB to fetch)
  chromium
  # real training text (public domain, permissive or GPL; see plugins/stage_*/corpus/README.md)
  bible-kjv bible-kjv-text fortunes fortunes-min wamerican wordnet-base miscfiles
  # real multimodal SFT data: images (MIT) and spoken words (see plugins/stage_sft/corpus/README.md)
  dataset-fashion-mnist espeak-ng
  # rootless builds and exec for ordinary users: newuidmap/newgidmap map a user's /etc/subuid
  # range into the build's user namespace; squashfuse shows an image to `nemokit exec` where
  # /dev/fuse is usable (the tests run them as an ordinary user with setpriv, from util-linux);
  # fuse-overlayfs mounts the layers where the kernel refuses overlayfs to a user namespace
  uidmap squashfuse fuse-overlayfs
  # packaging
  dpkg-dev file
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup-deps: all ${#packages[@]} packages present"
