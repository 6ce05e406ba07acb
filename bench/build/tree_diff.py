#!/usr/bin/env python3
"""Compares two root filesystems: paths, types, modes, owners, symlink
targets and content hashes (never timestamps). Exit 0 when equal."""
import argparse
import hashlib
import os
import stat
import sys


def listing(root, skip):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel in skip:
                continue
            st = os.lstat(full)
            kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else \
                "f" if stat.S_ISREG(st.st_mode) else "o"
            desc = f"{kind} {stat.S_IMODE(st.st_mode):o} {st.st_uid}:{st.st_gid}"
            if kind == "l":
                desc += " -> " + os.readlink(full)
            elif kind == "f":
                with open(full, "rb") as f:
                    desc += " " + hashlib.sha256(f.read()).hexdigest()
            out[rel] = desc
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("theirs")
    ap.add_argument("--skip", action="append", default=[])
    ap.add_argument("--skip-theirs", action="append", default=[],
                    help="a path the second tree may have and the first must not")
    ap.add_argument("--any-content", action="append", default=[],
                    help="compare metadata only (e.g. a compiled binary with a build id)")
    a = ap.parse_args()
    ours, theirs = listing(a.ours, set(a.skip)), listing(a.theirs, set(a.skip))
    for p in a.skip_theirs:
        if p in ours:
            print(f"{p}: present in {a.ours}, which must not have it")
            return 1
        theirs.pop(p, None)
    for p in a.any_content:
        for t in (ours, theirs):
            if p in t:
                t[p] = t[p].rsplit(" ", 1)[0]
    bad = 0
    for p in sorted(set(ours) | set(theirs)):
        if ours.get(p) != theirs.get(p):
            bad += 1
            if bad <= 40:
                print(f"{p}: nemokit {ours.get(p, '(absent)')} | buildah {theirs.get(p, '(absent)')}")
    print(f"{len(ours)} entries compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
