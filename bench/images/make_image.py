#!/usr/bin/env python3
"""Builds an OCI image layout (and optionally a docker-archive) from real files.

Each --layer is a comma-separated list of paths under --root, packed with GNU tar
(--numeric-owner --xattrs). Layer compression: none, gzip or zstd.
Used by bench/images/run.sh; needs only the Python standard library, tar, gzip, zstd.
"""
import argparse, hashlib, io, json, os, subprocess, tarfile, tempfile, shutil


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def put_blob(out, data_path=None, data=None):
    if data is not None:
        digest = hashlib.sha256(data).hexdigest()
        dst = os.path.join(out, "blobs", "sha256", digest)
        with open(dst, "wb") as f:
            f.write(data)
        return digest, len(data)
    digest = sha256_file(data_path)
    dst = os.path.join(out, "blobs", "sha256", digest)
    shutil.move(data_path, dst)
    return digest, os.path.getsize(dst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/")
    ap.add_argument("--layer", action="append", required=True)
    ap.add_argument("--compression", choices=["none", "gzip", "zstd"], default="gzip")
    ap.add_argument("--out", required=True, help="OCI layout directory to create")
    ap.add_argument("--docker-archive", help="also write a docker save archive here")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--whiteout", action="append", default=[],
                    help="path deleted by the top layer (a .wh. entry)")
    ap.add_argument("--opaque", action="append", default=[],
                    help="folder whose lower contents the top layer hides (.wh..wh..opq)")
    args = ap.parse_args()

    out = args.out
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    work = tempfile.mkdtemp(dir=out)
    layers, diff_ids, raw_tars = [], [], []
    for i, spec in enumerate(args.layer):
        paths = [p.strip().lstrip("/") for p in spec.split(",") if p.strip()]
        raw = os.path.join(work, f"layer{i}.tar")
        cmd = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", raw, "-C", args.root] + paths
        if i == len(args.layer) - 1 and (args.whiteout or args.opaque):
            marks = os.path.join(work, "marks")
            names = []
            for p in args.whiteout:
                d, b = os.path.split(p.strip("/"))
                names.append(os.path.join(d, ".wh." + b))
            for p in args.opaque:
                names.append(os.path.join(p.strip("/"), ".wh..wh..opq"))
            for n in names:
                os.makedirs(os.path.join(marks, os.path.dirname(n)), exist_ok=True)
                open(os.path.join(marks, n), "w").close()
            cmd += ["-C", marks, "--no-recursion"] + names
        subprocess.run(cmd, check=True)
        diff_ids.append("sha256:" + sha256_file(raw))
        if args.compression == "none":
            blob, mt = raw + ".copy", "application/vnd.oci.image.layer.v1.tar"
            shutil.copyfile(raw, blob)
        elif args.compression == "gzip":
            blob, mt = raw + ".gz", "application/vnd.oci.image.layer.v1.tar+gzip"
            with open(blob, "wb") as f:
                subprocess.run(["gzip", "-n", "-6", "-c", raw], stdout=f, check=True)
        else:
            blob, mt = raw + ".zst", "application/vnd.oci.image.layer.v1.tar+zstd"
            subprocess.run(["zstd", "-q", "-3", "-T0", "-o", blob, raw], check=True)
        digest, size = put_blob(out, data_path=blob)
        layers.append({"mediaType": mt, "digest": "sha256:" + digest, "size": size})
        raw_tars.append(raw)

    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/bash"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "make_image.py"} for _ in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    cdigest, csize = put_blob(out, data=config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + cdigest, "size": csize},
                "layers": layers}
    mbytes = json.dumps(manifest, sort_keys=True).encode()
    mdigest, msize = put_blob(out, data=mbytes)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mdigest,
        "size": msize, "annotations": {"org.opencontainers.image.ref.name": args.tag}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    if args.docker_archive:
        # The classic `docker save` layout: <id>/layer.tar, <config>.json, manifest.json.
        with tarfile.open(args.docker_archive, "w", format=tarfile.PAX_FORMAT) as t:
            names = []
            for i, raw in enumerate(raw_tars):
                name = f"{diff_ids[i][7:]}/layer.tar"
                t.add(raw, arcname=name)
                names.append(name)
            cname = f"{cdigest}.json"
            info = tarfile.TarInfo(cname)
            info.size = len(config_bytes)
            t.addfile(info, io.BytesIO(config_bytes))
            m = json.dumps([{"Config": cname, "RepoTags": [f"bench:{args.tag}"], "Layers": names}]).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(m)
            t.addfile(info, io.BytesIO(m))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
