#!/usr/bin/env python3
"""Reads a packed SFT artifact with numpy alone and checks its layout: shapes, document starts,
padding, and that the shifted loss mask only trains positions whose target (the next token) lies
in the same document. The test runs it only where numpy imports (sft_stage_test says why not)."""
import json
import sys
from pathlib import Path

import numpy as np

root = Path(sys.argv[1])
meta = json.loads((root / "metadata.json").read_text())
S = meta["pack_size"]
for name, split in meta["splits"].items():
    d = root / split["path"]
    ids = np.load(d / "input_ids.npy")
    mask = np.load(d / "loss_mask.npy")
    starts = np.load(d / "seq_start_id.npy")
    ptr = np.load(d / "seq_start_ptr.npy")
    length = np.load(d / "pack_length.npy")
    assert ids.dtype == np.int32 and mask.dtype == np.uint8, (ids.dtype, mask.dtype)
    assert ids.shape == mask.shape == (split["packs"], S), ids.shape
    assert ptr.shape == (split["packs"] + 1,) and ptr[0] == 0 and ptr[-1] == len(starts) == split["documents"]
    assert int(length.sum()) == split["tokens"], (length.sum(), split["tokens"])
    assert int(mask.sum()) == split["trained_tokens"]
    for p in range(ids.shape[0]):
        s = list(starts[ptr[p]:ptr[p + 1]]) + [int(length[p])]
        assert s[0] == 0 and all(a < b for a, b in zip(s, s[1:])), s
        for end in s[1:]:
            assert mask[p, end - 1] == 0, f"pack {p}: a document's last position trains across the boundary"
        assert not mask[p, length[p]:].any() and (ids[p, length[p]:] == meta["pad_id"]).all()
packs = ", ".join("%s: %d packs" % (k, v["packs"]) for k, v in meta["splits"].items())
print("numpy: %s OK (%s)" % (root, packs))
