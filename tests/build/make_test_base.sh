#!/bin/sh
# Makes the Debian base image the build tests compile in: a root filesystem
# assembled from this machine's installed Debian packages (dash, a few
# coreutils, gcc 12 with binutils and the libc6-dev headers and libraries),
# written as a `docker save` archive with plain tar and sha256sum, so the
# image under test is made without nemokit's own code.
#   make_test_base.sh OUT_DIR   ->  OUT_DIR/base.tar
set -eu
out=$1
rootfs=$out/rootfs
rm -rf "$rootfs" "$out/archive"
mkdir -p "$rootfs" "$out/archive"

list=$out/files.txt
: > "$list"
add() { for f in "$@"; do [ -e "$f" ] || [ -L "$f" ] && echo "$f" >> "$list"; done; return 0; }

add /usr/bin/dash /usr/bin/sh
for t in cat echo id ls mkdir rm cp mv chmod env true false head printf sha256sum stat touch uname whoami; do
  add "/usr/bin/$t"
done
add /usr/bin/gcc /usr/bin/gcc-12 /usr/bin/x86_64-linux-gnu-gcc-12 /usr/bin/cc
add /usr/bin/as /usr/bin/ld /usr/bin/ld.bfd /usr/bin/x86_64-linux-gnu-as /usr/bin/x86_64-linux-gnu-ld \
    /usr/bin/x86_64-linux-gnu-ld.bfd
gccdir=$(dirname "$(gcc -print-libgcc-file-name)")
libexec=$(dirname "$(gcc -print-prog-name=lto-wrapper)")
for f in cc1 collect2 lto-wrapper liblto_plugin.so crtbegin.o crtbeginS.o crtend.o crtendS.o libgcc.a \
         libgcc_eh.a libgcc_s.so; do
  add "$gccdir/$f" "$libexec/$f"
done
add /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
# Shared libraries the programs need.
for f in $(cat "$list"); do
  [ -f "$f" ] || continue
  ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}' >> "$list"
done
find "$gccdir/include" >> "$list"
dpkg -L libc6-dev | while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done >> "$list"
dpkg -L libc6 | grep -E '^/usr/lib/x86_64-linux-gnu/|^/usr/lib64/|^/lib' | while read -r f; do
  [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done >> "$list"

# Every symlink target on the way.
sort -u "$list" -o "$list"
while read -r f; do
  while [ -L "$f" ]; do
    t=$(readlink "$f")
    case $t in /*) f=$t ;; *) f=$(dirname "$f")/$t ;; esac
    echo "$f"
  done
done < "$list" > "$list.targets"
cat "$list.targets" >> "$list"
sort -u "$list" -o "$list"
# Merged /usr: /bin, /lib, /lib64 are symlinks into /usr, as on Debian 12.
sed -e 's#^/lib64/#/usr/lib64/#' -e 's#^/lib/#/usr/lib/#' -e 's#^/bin/#/usr/bin/#' "$list" | sort -u > "$list.usr"
tar -C / --no-recursion -cf - $(sed 's#^/##' "$list.usr") 2>/dev/null | tar -C "$rootfs" -xpf -
ln -s usr/bin "$rootfs/bin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"; ln -s usr/sbin "$rootfs/sbin"
mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/home/app" "$rootfs/usr/sbin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/app"
find "$rootfs" -newer "$list" -exec touch -h -d @1700000000 {} +

# docker save layout: manifest.json, <config>.json, <layer>/layer.tar
tar --numeric-owner --sort=name -C "$rootfs" -cf "$out/archive/layer.tar" .
diff_id=sha256:$(sha256sum "$out/archive/layer.tar" | cut -d' ' -f1)
mkdir -p "$out/archive/layer"
mv "$out/archive/layer.tar" "$out/archive/layer/layer.tar"
cat > "$out/archive/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["$diff_id"]},"history":[{"created":"2023-11-14T22:13:20Z","created_by":"make_test_base.sh: host Debian files"}]}
JSON
cfg=$(sha256sum "$out/archive/config.json" | cut -d' ' -f1)
mv "$out/archive/config.json" "$out/archive/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["nemokit-test-base:latest"],"Layers":["layer/layer.tar"]}]\n' "$cfg" > "$out/archive/manifest.json"
tar -C "$out/archive" -cf "$out/base.tar.tmp" manifest.json "$cfg.json" layer
mv "$out/base.tar.tmp" "$out/base.tar"
rm -rf "$out/archive" "$list" "$list.targets" "$list.usr"
