#!/usr/bin/env python3
"""Reads nemokit's Megatron shards with numpy alone, the way megatron.core's indexed_dataset
does (np.frombuffer on the .idx, np.memmap on the .bin), and compares every sequence with the
expected token ids. With --megatron, megatron-core itself (pip install --no-deps megatron-core; it
needs torch) reads them instead: its IndexedDataset must give the same ids from every shard, and
its BlendedMegatronDatasetBuilder must build GPTDatasets from blend.json whose samples are windows
of our documents.

usage: check_idx_numpy.py [--megatron] BLEND_JSON EXPECTED_JSON
EXPECTED_JSON maps each shard prefix to its list of sequences (lists of ids).
Exits 0 when every shard matches, 1 with a message naming the shard otherwise, and 77 (skipped)
with the reason when --megatron is given and megatron-core cannot be imported.
"""
import json
import struct
import sys

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64,
          7: np.float32, 8: np.uint16}


def read_shard(prefix):
    with open(prefix + ".idx", "rb") as f:
        if f.read(9) != MAGIC:
            raise ValueError(f"{prefix}.idx: bad magic")
        (version,) = struct.unpack("<Q", f.read(8))
        if version != 1:
            raise ValueError(f"{prefix}.idx: version {version}")
        (code,) = struct.unpack("<B", f.read(1))
        dtype = DTYPES[code]
        (seq_count,) = struct.unpack("<Q", f.read(8))
        (doc_count,) = struct.unpack("<Q", f.read(8))
        offset = f.tell()
    idx = np.memmap(prefix + ".idx", mode="r", order="C")
    lengths = np.frombuffer(idx, dtype=np.int32, count=seq_count, offset=offset)
    pointers = np.frombuffer(idx, dtype=np.int64, count=seq_count, offset=offset + lengths.nbytes)
    docs = np.frombuffer(idx, dtype=np.int64, count=doc_count,
                         offset=offset + lengths.nbytes + pointers.nbytes)
    if offset + lengths.nbytes + pointers.nbytes + docs.nbytes != idx.size:
        raise ValueError(f"{prefix}.idx: size does not match the counts")
    if docs[0] != 0 or docs[-1] != seq_count or np.any(np.diff(docs) < 0):
        raise ValueError(f"{prefix}.idx: bad document indices")
    bin_ = np.memmap(prefix + ".bin", mode="r", order="C")
    seqs = []
    for length, pointer in zip(lengths.tolist(), pointers.tolist()):
        seqs.append(np.frombuffer(bin_, dtype=dtype, count=length, offset=pointer).tolist())
    return np.dtype(dtype).name, seqs


def megatron_reader():
    """megatron-core's IndexedDataset, or the text of why it cannot be imported."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from megatron.core.datasets.indexed_dataset import IndexedDataset
        return IndexedDataset, None
    except Exception as e:  # not installed, or torch missing
        return None, f"{type(e).__name__}: {e}"


def megatron_gpt_samples(blend, expected, seq_length=32, count=20):
    """Megatron-Core's own BlendedMegatronDatasetBuilder builds GPTDatasets from our blend.json and
    shards; its samples must be windows of our documents' ids. Returns an error string or None."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
        from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    class Ids:  # the builder only reads these from a tokenizer
        eod = 0
        pad = 0
        vocab_size = 1 + max(t for seqs in expected.values() for seq in seqs for t in seq)
        unique_identifiers = {"class": "check_idx_numpy"}

    def split(name):
        entries = blend.get(name) or []
        return (entries[1::2], [float(w) for w in entries[0::2]]) if entries else None

    config = GPTDatasetConfig(random_seed=1234, sequence_length=seq_length,
                              blend_per_split=[split("train"), split("valid"), split("test")],
                              tokenizer=Ids(), reset_position_ids=False, reset_attention_mask=False,
                              eod_mask_loss=False, mid_level_dataset_surplus=0.005, path_to_cache=None)
    sizes = [count if split(n) else None for n in ("train", "valid", "test")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()[0]
    stream = [t for prefix in blend["train"][1::2] for seq in expected[prefix] for t in seq]
    text = "," + ",".join(map(str, stream)) + ","
    eod = stream[-1]  # every document ends with the end-of-document id
    for i in range(count):
        s = train[i]
        tokens, labels = s["tokens"].tolist(), s["labels"].tolist()
        if len(tokens) != seq_length or tokens[1:] != labels[:-1]:
            return f"megatron-core sample {i} is not a shifted window of {seq_length} tokens"
        # A window crosses documents in Megatron's own shuffled order: each piece up to and
        # including an end-of-document id must be a run of ids in our shards.
        piece = []
        for t in tokens + labels[-1:]:
            piece.append(t)
            if t == eod:
                if "," + ",".join(map(str, piece)) + "," not in text:
                    return f"megatron-core sample {i} holds a run of ids that is not in the train shards"
                piece = []
        if piece and "," + ",".join(map(str, piece)) + "," not in text:
            return f"megatron-core sample {i} ends with ids that are not in the train shards"
    return None


def check_with_numpy(blend, expected):
    checked = 0
    for split in ("train", "valid", "test"):
        entries = blend[split]
        for prefix in entries[1::2]:
            dtype, seqs = read_shard(prefix)
            if seqs != expected[prefix]:
                print(f"check_idx_numpy: {prefix}: tokens differ from the expected ids", file=sys.stderr)
                return 1
            checked += 1
            print(f"{prefix}: {len(seqs)} sequences of {dtype} match")
    if checked != len(expected):
        print(f"check_idx_numpy: checked {checked} shards, expected {len(expected)}", file=sys.stderr)
        return 1
    return 0


def check_with_megatron(blend, expected):
    megatron, why = megatron_reader()
    if megatron is None:
        print(f"skipped: megatron-core cannot be imported ({why}); pip install --no-deps megatron-core")
        return 77
    for prefix, seqs in expected.items():
        ds = megatron(prefix)
        got = [ds[i].tolist() for i in range(len(ds))]
        if got != seqs:
            print(f"check_idx_numpy: {prefix}: megatron-core reads other tokens", file=sys.stderr)
            return 1
    print(f"megatron-core IndexedDataset: {len(expected)} shards match")
    error = megatron_gpt_samples(blend, expected)
    if error:
        print(f"check_idx_numpy: {error}", file=sys.stderr)
        return 1
    print("megatron-core GPTDataset/BlendedDataset built from blend.json: samples are our windows")
    return 0


def main():
    args = sys.argv[1:]
    use_megatron = args[:1] == ["--megatron"]
    blend_path, expected_path = args[1:] if use_megatron else args
    with open(blend_path) as f:
        blend = json.load(f)
    with open(expected_path) as f:
        expected = json.load(f)
    return check_with_megatron(blend, expected) if use_megatron else check_with_numpy(blend, expected)


if __name__ == "__main__":
    sys.exit(main())
