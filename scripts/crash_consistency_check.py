#!/usr/bin/env python3
"""Checks that the final paths a nemokit writer left are whole (scripts/crash_consistency.sh).

    crash_consistency_check.py KIND PATH [KIND PATH ...]

KIND is one of:
  checkpoint  a checkpoint.dir: every step_NNNNNNN folder complete, `latest` naming one
  data        a pretraining data folder: .idx/.bin pairs agree; metadata.json, when present,
              matches the shards' bytes (it is the folder's "complete" mark)
  artifacts   an artifact store root: every vN has metadata.json and manifest.json, `latest`
              names a version, the newest version's manifest matches its files when the
              folder still holds that content
  oci         an OCI image layout: index.json, and every blob it reaches present with its sha256
  buildcache  a build cache's build/ folder: every blob hashes to its name, every step record
              parses and names a layer whose blob is whole
  squashfs    a .sqsh file (absent is fine): unsquashfs -s and -l read it

One line per problem on stdout ("CORRUPT <path>: why"), and one line per leftover temporary
file ("LEFTOVER <path>"); exit status 1 when anything is corrupt. Only the standard library:
this must run where nothing else is installed.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys

problems = []
leftovers = []


def corrupt(path, why):
    problems.append(f"CORRUPT {path}: {why}")


# CRASH_CHECK_HASH_CACHE names a JSON file of digests already computed, keyed by path, inode,
# size and modification time: the harness checks a growing layer cache after every kill, and
# hashing every blob each time made the run quadratic. A file rewritten in place changes its
# mtime (and a renamed-in one its inode), so it is hashed again.
_cache_path = os.environ.get("CRASH_CHECK_HASH_CACHE")
_cache = {}
if _cache_path and os.path.exists(_cache_path):
    try:
        _cache = json.load(open(_cache_path))
    except ValueError:
        _cache = {}


def sha256_of(path):
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
    if key in _cache:
        return _cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    _cache[key] = h.hexdigest()
    return _cache[key]


def save_hash_cache():
    if _cache_path:
        tmp = _cache_path + ".new"
        with open(tmp, "w") as f:
            json.dump(_cache, f)
        os.replace(tmp, _cache_path)


def load_json(path):
    """The parsed file, or None after recording why it is not valid JSON."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        corrupt(path, f"not valid JSON ({e})")
        return None


def note_leftovers(root):
    """Temporary names the atomic writers use: `.NAME.partial-XXXXXX`, `NAME.tmp-PID-N`,
    `NAME.tmp` folders, `.publish-*` staging folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if ".partial-" in n or ".tmp-" in n or n.endswith(".tmp") or n.startswith(".publish-") or n.endswith(".removing"):
                leftovers.append(os.path.join(dirpath, n))


# --- safetensors and checkpoints -------------------------------------------------------------

def check_safetensors(path):
    """8-byte header length, a JSON header, tensor data exactly filling the rest of the file."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return corrupt(path, f"{size} bytes: no header length")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return corrupt(path, f"header of {n} bytes in a file of {size}")
            header = json.loads(f.read(n).decode("utf-8"))
    except (OSError, ValueError) as e:
        return corrupt(path, f"unreadable header ({e})")
    end = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        end = max(end, t["data_offsets"][1])
    if end != size - 8 - n:
        corrupt(path, f"tensor data ends at {end} but the file holds {size - 8 - n} bytes after the header")


def check_step_folder(d):
    for name in ("config.json", "trainer_state.json"):
        p = os.path.join(d, name)
        if not os.path.isfile(p):
            corrupt(d, f"{name} missing")
        else:
            load_json(p)
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.isfile(index):  # sharded weights: every shard the index names
        j = load_json(index)
        for shard in sorted(set((j or {}).get("weight_map", {}).values())):
            p = os.path.join(d, shard)
            if os.path.isfile(p):
                check_safetensors(p)
            else:
                corrupt(d, f"{shard} missing (named by the index)")
    elif os.path.isfile(os.path.join(d, "model.safetensors")):
        check_safetensors(os.path.join(d, "model.safetensors"))
    else:
        corrupt(d, "model.safetensors missing")
    p = os.path.join(d, "optimizer.safetensors")
    if os.path.isfile(p):
        check_safetensors(p)
    else:
        corrupt(d, "optimizer.safetensors missing")


def check_checkpoint(root):
    if not os.path.isdir(root):
        return
    steps = [n for n in os.listdir(root) if n.startswith("step_") and "." not in n]
    for n in steps:
        check_step_folder(os.path.join(root, n))
    latest = os.path.join(root, "latest")
    if os.path.exists(latest):
        name = open(latest).read().strip()
        if name not in steps:
            corrupt(latest, f"names {name!r}, which is not a step folder here")
    elif steps:
        corrupt(root, "step folders but no `latest`")
    note_leftovers(root)


# --- Megatron indexed datasets -----------------------------------------------------------------

DTYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 4, 7: 8, 8: 2}


def check_idx_bin(prefix):
    """Megatron-Core's .idx: magic, version, dtype code, sequence and document counts, then the
    sequence lengths; the .bin holds exactly their sum in that dtype."""
    idx, binf = prefix + ".idx", prefix + ".bin"
    try:
        with open(idx, "rb") as f:
            if f.read(9) != b"MMIDIDX\x00\x00":
                return corrupt(idx, "bad magic")
            (version,) = struct.unpack("<Q", f.read(8))
            (code,) = struct.unpack("<B", f.read(1))
            (seqs,) = struct.unpack("<Q", f.read(8))
            (docs,) = struct.unpack("<Q", f.read(8))
            sizes = struct.unpack(f"<{seqs}i", f.read(4 * seqs))
            pointers = struct.unpack(f"<{seqs}q", f.read(8 * seqs))
            doc_idx = struct.unpack(f"<{docs}q", f.read(8 * docs))
            rest = f.read()
    except (OSError, struct.error) as e:
        return corrupt(idx, f"truncated ({e})")
    if version != 1 or code not in DTYPE_SIZES:
        return corrupt(idx, f"version {version}, dtype code {code}")
    if rest:
        corrupt(idx, f"{len(rest)} bytes after the document index")
    item = DTYPE_SIZES[code]
    expect = sum(sizes) * item
    if not os.path.isfile(binf):
        return corrupt(idx, "its .bin is missing")
    actual = os.path.getsize(binf)
    if actual != expect:
        corrupt(binf, f"{actual} bytes, its .idx says {expect}")
    if seqs and (pointers[0] != 0 or pointers[-1] + sizes[-1] * item != expect):
        corrupt(idx, "pointers do not span the .bin")
    if docs and (doc_idx[0] != 0 or doc_idx[-1] != seqs):
        corrupt(idx, "document index does not end at the sequence count")


def check_data(root):
    if not os.path.isdir(root):
        return
    for dirpath, _, filenames in os.walk(root):
        for n in filenames:
            if n.endswith(".idx"):
                check_idx_bin(os.path.join(dirpath, n[:-4]))
            elif n.endswith(".bin") and n[:-4] + ".idx" not in filenames:
                # A lone .bin is no dataset (Megatron opens the .idx first): note it, it is not
                # a half-written final file.
                leftovers.append(os.path.join(dirpath, n) + " (no .idx)")
    for name in ("blend.json", "tokenizer.json"):
        if os.path.exists(os.path.join(root, name)):
            load_json(os.path.join(root, name))
    meta_path = os.path.join(root, "metadata.json")
    if os.path.exists(meta_path):
        meta = load_json(meta_path)
        if meta is not None:
            check_data_against_metadata(root, meta, meta_path)
    note_leftovers(root)


def check_data_against_metadata(root, meta, meta_path):
    """metadata.json says the folder is complete: every shard it lists must hold those bytes."""
    for split, s in (meta.get("splits") or {}).items():
        for shard in s.get("shards", []):
            for key, value in shard.items():
                if not key.endswith("sha256") or not isinstance(value, str):
                    continue
                ext = ".bin" if "bin" in key else ".idx" if "idx" in key else None
                prefix = shard.get("prefix") or shard.get("path")
                if ext is None or prefix is None:
                    continue
                p = prefix + ext if os.path.isabs(prefix) else os.path.join(root, prefix + ext)
                if not os.path.isfile(p):
                    corrupt(meta_path, f"lists {p}, which is missing")
                elif sha256_of(p) != value.removeprefix("sha256:"):
                    corrupt(meta_path, f"lists {p} with another sha256 than its bytes")
    tok = (meta.get("tokenizer") or {})
    if tok.get("path") and tok.get("sha256") and os.path.isfile(tok["path"]):
        if sha256_of(tok["path"]) != tok["sha256"].removeprefix("sha256:"):
            corrupt(meta_path, f"tokenizer {tok['path']} has another sha256 than recorded")


# --- the artifact store --------------------------------------------------------------------------

def check_artifacts(root):
    if not os.path.isdir(root):
        return
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(folder):
            continue
        versions = {}
        for v in os.listdir(folder):
            if v.startswith("v") and v[1:].isdigit() and os.path.isdir(os.path.join(folder, v)):
                vd = os.path.join(folder, v)
                meta = load_json(os.path.join(vd, "metadata.json")) if os.path.isfile(
                    os.path.join(vd, "metadata.json")) else corrupt(vd, "metadata.json missing")
                man = load_json(os.path.join(vd, "manifest.json")) if os.path.isfile(
                    os.path.join(vd, "manifest.json")) else corrupt(vd, "manifest.json missing")
                versions[int(v[1:])] = (meta, man)
        latest = os.path.join(folder, "latest")
        if os.path.exists(latest):
            text = open(latest).read().strip()
            if not (text.startswith("v") and text[1:].isdigit() and int(text[1:]) in versions):
                corrupt(latest, f"names {text!r}, which is not a version here")
        elif versions:
            corrupt(folder, "versions but no `latest`")
        if versions:
            meta, man = versions[max(versions)]
            if meta and man is not None:
                check_artifact_files(folder, meta, man)
    note_leftovers(root)


def check_artifact_files(folder, meta, manifest):
    """The newest version's files, when its folder still holds that content (a later run that was
    killed before publishing may have changed the folder: then its own metadata.json differs)."""
    path = meta.get("path")
    if not path or not os.path.exists(path):
        return
    own = os.path.join(path, "metadata.json") if os.path.isdir(path) else None
    if own and meta.get("type") != "ModelArtifact":
        # A data folder is complete only with its own metadata.json; without it a later prep is
        # (or was, until killed) rewriting it, and the store's manifest rightly no longer matches.
        try:
            if json.load(open(own)).get("content_digest") != meta.get("content_digest"):
                return
        except OSError:
            return
        except ValueError:
            return  # reported by the data check
    base = path if os.path.isdir(path) else os.path.dirname(path)
    for f in manifest:
        n = os.path.basename(f["path"])
        if ".tmp-" in n or ".partial-" in n:
            corrupt(folder, f"the newest version's manifest (and content digest) takes in {f['path']}, a temporary a killed run left")
        p = os.path.join(base, f["path"])
        if not os.path.isfile(p):
            corrupt(folder, f"{p} listed by the newest version is missing")
        elif f.get("sha256") and sha256_of(p) != f["sha256"].removeprefix("sha256:"):
            corrupt(folder, f"{p} has another sha256 than the newest version records")


# --- images --------------------------------------------------------------------------------------

def check_blob(blobs, digest, size=None, where=""):
    algo, _, hexd = digest.partition(":")
    p = os.path.join(blobs, hexd)
    if algo != "sha256" or not os.path.isfile(p):
        corrupt(p, f"missing ({where})")
        return None
    if size is not None and os.path.getsize(p) != size:
        corrupt(p, f"{os.path.getsize(p)} bytes, {where} says {size}")
    if sha256_of(p) != hexd:
        corrupt(p, "bytes do not hash to its name")
        return None
    return p


def check_oci(layout):
    if not os.path.isdir(layout):
        return
    index_path = os.path.join(layout, "index.json")
    if not os.path.exists(index_path):
        # Blobs but no index: the first build was killed before it; nothing final yet.
        note_leftovers(layout)
        return
    index = load_json(index_path)
    blobs = os.path.join(layout, "blobs", "sha256")
    for m in (index or {}).get("manifests", []):
        p = check_blob(blobs, m["digest"], m.get("size"), "index.json")
        if p is None:
            continue
        manifest = load_json(p)
        if not manifest:
            continue
        c = manifest.get("config", {})
        check_blob(blobs, c.get("digest", ""), c.get("size"), "manifest config")
        for layer in manifest.get("layers", []):
            check_blob(blobs, layer["digest"], layer.get("size"), "manifest layer")
    note_leftovers(layout)


def check_buildcache(build):
    if not os.path.isdir(build):
        return
    blobs = os.path.join(build, "blobs", "sha256")
    if os.path.isdir(blobs):
        for n in os.listdir(blobs):
            if ".tmp-" in n or ".partial-" in n:
                continue
            if sha256_of(os.path.join(blobs, n)) != n:
                corrupt(os.path.join(blobs, n), "bytes do not hash to its name")
    records = os.path.join(build, "cache")
    if os.path.isdir(records):
        for n in os.listdir(records):
            if not n.endswith(".json"):
                continue
            rec = load_json(os.path.join(records, n))
            layer = (rec or {}).get("layer")
            if layer:
                check_blob(blobs, layer["digest"], layer.get("size"), f"step record {n}")
                if not os.path.isdir(os.path.join(build, "layers", layer["diff_id"].partition(":")[2])):
                    corrupt(os.path.join(records, n), "names a layer that is not unpacked")
    for sub in ("cache", "blobs"):
        if os.path.isdir(os.path.join(build, sub)):
            note_leftovers(os.path.join(build, sub))


def check_squashfs(path):
    if not os.path.exists(path):
        return
    for flag in ("-s", "-l"):
        r = subprocess.run(["unsquashfs", flag, path], capture_output=True, text=True)
        if r.returncode != 0:
            corrupt(path, f"unsquashfs {flag} failed: {(r.stderr or r.stdout).strip()[:200]}")
    note_leftovers(os.path.dirname(path))


CHECKS = {"checkpoint": check_checkpoint, "data": check_data, "artifacts": check_artifacts,
          "oci": check_oci, "buildcache": check_buildcache, "squashfs": check_squashfs}


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    for kind, path in zip(argv[0::2], argv[1::2]):
        if kind not in CHECKS:
            print(f"unknown kind {kind}", file=sys.stderr)
            return 2
        CHECKS[kind](path)
    save_hash_cache()
    for line in problems:
        print(line)
    for p in sorted(set(leftovers)):
        print(f"LEFTOVER {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
