#!/usr/bin/env python3
"""Pretraining data prep throughput, nemokit vs Hugging Face `tokenizers`, same corpus, same
tokenizer.json, all cores, in one script.

    python3 bench/data/bench_prep.py --bench build/bench/data/data_prep_bench

The ids are compared one by one (numpy reads the shards). nemokit's side is the whole prep (read text, split documents, tokenize, write Megatron shards,
hash sources, write blend.json and metadata.json); Hugging Face's side is only
`Tokenizer.encode_batch` over the same documents, already in memory. Each side warms up, then the
two alternate for --repeat rounds and each reports its best; the token counts must agree or the run fails. The corpus is the one
plugins/stage_pretrain/corpus/extract.sh writes (KJV, Austen, fortunes), --copies times over.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "tests", "data"))
from check_idx_numpy import read_shard  # noqa: E402  (numpy reader of Megatron shards)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BLANK = " \t\r\f\v"


def paragraphs(path):
    """The documents prep's text_split = "paragraph" makes of a file."""
    docs, cur = [], []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if line.strip(BLANK.encode()) == b"":
                if cur:
                    docs.append(b"\n".join(cur).decode("utf-8"))
                    cur = []
            else:
                cur.append(line)
    if cur:
        docs.append(b"\n".join(cur).decode("utf-8"))
    return [d for d in docs if d.strip()]


def run_bench(bench, config, out_dir, repeat):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        path = f.name
    try:
        res = subprocess.run([bench, path, out_dir, "--repeat", str(repeat)], capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"data_prep_bench failed:\n{res.stderr}")
        return json.loads(res.stdout)
    finally:
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path to the built data_prep_bench")
    ap.add_argument("--corpus", help="corpus folder (default: run extract.sh into a temp folder)")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if not corpus:
            corpus = os.path.join(tmp, "corpus")
            subprocess.run([os.path.join(ROOT, "plugins/stage_pretrain/corpus/extract.sh"), corpus], check=True,
                           stdout=subprocess.DEVNULL)
        texts = sorted(n for n in os.listdir(corpus) if n.endswith(".txt"))
        inputs = os.path.join(tmp, "inputs")
        os.makedirs(inputs)
        for c in range(args.copies):
            for n in texts:
                shutil.copyfile(os.path.join(corpus, n), os.path.join(inputs, f"{c:02d}_{n}"))
        files = [os.path.join(inputs, n) for n in sorted(os.listdir(inputs))]
        nbytes = sum(os.path.getsize(p) for p in files)

        # One tokenizer for both sides, trained by the prep itself on one copy of the corpus.
        tok_dir = os.path.join(tmp, "tok")
        run_bench(args.bench, {"inputs": [corpus], "train_tokenizer": {"vocab_size": args.vocab}}, tok_dir, 1)
        tokenizer_json = os.path.join(tok_dir, "tokenizer.json")

        docs = [d for p in files for d in paragraphs(p)]
        tok = Tokenizer.from_file(tokenizer_json)
        enc = tok.encode_batch(docs, add_special_tokens=False)  # warm-up; rayon uses all cores
        prep_config = {"inputs": [inputs], "tokenizer": tokenizer_json, "seq_length": 4096, "split": "100,0,0"}
        run_bench(args.bench, prep_config, os.path.join(tmp, "out"), 1)  # warm-up
        # Alternate the two sides so a busy machine slows both alike; keep each side's best.
        ours, best = None, float("inf")
        for _ in range(args.repeat):
            run = run_bench(args.bench, prep_config, os.path.join(tmp, "out"), 1)
            if ours is None or run["seconds"] < ours["seconds"]:
                ours = run
            t0 = time.perf_counter()
            enc = tok.encode_batch(docs, add_special_tokens=False)
            best = min(best, time.perf_counter() - t0)
        theirs_tokens = sum(len(e.ids) for e in enc) + len(docs)  # + one end-of-document id each
        # Everything went to train (split 100,0,0) in input order: the ids must be HF's, plus eod.
        eod = tok.token_to_id("<|endoftext|>")
        with open(os.path.join(tmp, "out", "blend.json")) as f:
            prefixes = json.load(f)["train"][1::2]
        ours_ids = (seq for p in prefixes for seq in read_shard(p)[1])
        same_ids = all(a == b.ids + [eod] for a, b in zip(ours_ids, enc))

    theirs_rate = theirs_tokens / best
    print(f"corpus: {len(files)} files, {nbytes / 1e6:.1f} MB, {len(docs)} documents; vocab {args.vocab}; "
          f"{os.cpu_count()} cores")
    print(f"nemokit data prep (read+tokenize+write shards): {ours['tokens_per_s'] / 1e6:7.2f} M tokens/s "
          f"({ours['seconds']:.3f} s, {ours['tokens']} tokens)")
    print(f"HF tokenizers encode_batch only:               {theirs_rate / 1e6:7.2f} M tokens/s "
          f"({best:.3f} s, {theirs_tokens} tokens)")
    same = same_ids and ours["tokens"] == theirs_tokens and ours["documents"] == len(docs)
    print(f"ids identical: {'yes' if same else 'NO'}")
    print(f"ratio nemokit/HF: {ours['tokens_per_s'] / theirs_rate:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
