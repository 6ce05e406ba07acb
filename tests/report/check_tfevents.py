#!/usr/bin/env python3
"""Loads the TensorBoard event files of a nemokit run with PyPI tensorboard's own reader
(EventAccumulator) and compares every scalar with the run's metrics.jsonl.

    python3 tests/report/check_tfevents.py DIR

DIR (written by Report.TinyRunWritesEventsAndItsReportPlotsTheMetrics): jobs/<one job>/ holding
metrics.jsonl and the event file(s). Every number of every metrics line must come back from
TensorBoard under the same tag and step, as a float32. Exits 77 (skipped) without tensorboard.
"""
import glob
import json
import os
import struct
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as e:  # ctest reads 77 as "skipped": the peer is optional
    print(f"skipped: tensorboard cannot be imported ({e}); pip install tensorboard")
    sys.exit(77)


def scalars_of(line):
    """The series of one metrics line, named as nemokit's metric_scalars names them."""
    out = []

    def walk(obj, prefix, top):
        for key, value in obj.items():
            if top and key in ("step", "phase"):
                continue
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                out.append((prefix + key, value))
            elif isinstance(value, dict):
                walk(value, prefix + key + "/", False)

    phase = line.get("phase")
    walk(line, phase + "/" if isinstance(phase, str) and phase else "", True)
    return out


def as_float32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def main(root):
    jobs = sorted(glob.glob(os.path.join(root, "jobs", "*")))
    if len(jobs) != 1:
        sys.exit(f"expected one job folder under {root}/jobs, found {jobs}")
    job = jobs[0]
    expected = {}  # (phase, tag) -> [(step, value)]
    with open(os.path.join(job, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            phase = m.get("phase") if isinstance(m.get("phase"), str) else ""
            for tag, value in scalars_of(m):
                expected.setdefault((phase, tag), []).append((m.get("step", 0), as_float32(value)))
    if not expected:
        sys.exit(f"{job}/metrics.jsonl holds no scalars")
    phases = sorted({p for p, _ in expected})
    checked = 0
    for phase in phases:
        folder = os.path.join(job, phase) if phase else job
        acc = EventAccumulator(folder, size_guidance={"scalars": 0})
        acc.Reload()
        tags = sorted(acc.Tags()["scalars"])
        want = sorted(t for p, t in expected if p == phase)
        if tags != want:
            sys.exit(f"{folder}: tensorboard reads tags {tags}, metrics.jsonl has {want}")
        for tag in tags:
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            if got != expected[(phase, tag)]:
                sys.exit(f"{folder}: {tag}: tensorboard reads {got}, metrics.jsonl has {expected[(phase, tag)]}")
            checked += len(got)
    print(f"tensorboard's EventAccumulator read {checked} scalars of {len(expected)} series from {job}, all as metrics.jsonl has them")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
