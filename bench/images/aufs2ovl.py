#!/usr/bin/env python3
"""Converts OCI whiteouts in an extracted layer to overlayfs form, as enroot's
enroot-aufs2ovlfs does: .wh.NAME -> character device 0:0 named NAME,
.wh..wh..opq -> xattr trusted.overlay.opaque=y on its folder."""
import os, stat, sys

root = sys.argv[1]
for dirpath, dirnames, filenames in os.walk(root):
    for name in filenames:
        if not name.startswith(".wh."):
            continue
        path = os.path.join(dirpath, name)
        os.unlink(path)
        if name == ".wh..wh..opq":
            os.setxattr(dirpath, "trusted.overlay.opaque", b"y")
        else:
            os.mknod(os.path.join(dirpath, name[4:]), stat.S_IFCHR | 0o600, os.makedev(0, 0))
