#!/usr/bin/env python3
"""Writes fixtures/bilinear/resize_bilinear.json (runtime_image_test reads it): seeded uint8 RGB
images and torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=False) of them in float32, before any rounding, for upscaling, downscaling, mixed and
non-integer factors. rt::media::resize_bilinear rounds, so each of its values must lie within
0.5 of torch's.

JSON: {"cases": [{"in_w", "in_h", "out_w", "out_h", "input": [HWC uint8 row-major],
                  "expected": [HWC float32 row-major]}]}

Usage: python3 make_bilinear_fixture.py [--out DIR]   (needs torch and numpy)
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

CASES = [  # (in_w, in_h, out_w, out_h)
    (7, 5, 11, 9),      # up, non-integer factors
    (7, 5, 3, 2),       # down
    (6, 4, 13, 3),      # up in x, down in y
    (5, 5, 20, 20),     # exact 4x up
    (16, 12, 5, 7),     # down in x, down less in y
    (1, 3, 4, 6),       # a one-pixel-wide source
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "bilinear"))
    args = ap.parse_args()
    rng = np.random.default_rng(20240611)
    cases = []
    for in_w, in_h, out_w, out_h in CASES:
        img = rng.integers(0, 256, size=(in_h, in_w, 3), dtype=np.uint8)
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
        y = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=False)
        out = y.squeeze(0).permute(1, 2, 0).contiguous().numpy().astype(np.float32)
        cases.append({"in_w": in_w, "in_h": in_h, "out_w": out_w, "out_h": out_h,
                      "input": img.reshape(-1).tolist(),
                      "expected": [float(v) for v in out.reshape(-1)]})
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "resize_bilinear.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
