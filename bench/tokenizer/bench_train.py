#!/usr/bin/env python3
"""Training time, nemokit vs Hugging Face `tokenizers`: same text, same vocab size, same split
pattern and special tokens, all cores, in one script.

    python3 bench/tokenizer/bench_train.py --tool build/tests/tokenizer/tokenizer_tool

nemokit is timed as a whole `tokenizer train` process (start-up, reading, writing included);
Hugging Face as its in-process train() call. Both vocabs are then loaded by Hugging Face and must
give nearly the same compression on the corpus (they are different trainers, not the same vocab).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

GPT4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus(path, copies):
    text = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True,
                          capture_output=True).stdout.decode("utf-8")
    fortunes = "/usr/share/games/fortunes"
    for name in sorted(os.listdir(fortunes)):
        p = os.path.join(fortunes, name)
        if "." not in name and os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                text += f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text * copies)
    return len(text.encode("utf-8")) * copies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="tokenizer_tool (or a wrapper for `nemokit tokenizer`)")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--copies", type=int, default=1)
    args = ap.parse_args()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "corpus.txt")
        nbytes = corpus(text_path, args.copies)
        ours_path = os.path.join(tmp, "ours.json")
        cmd = [args.tool, "train", "--vocab-size", str(args.vocab_size), "--out", ours_path]
        for s in specials:
            cmd += ["--special", s]
        t0 = time.perf_counter()
        subprocess.run(cmd + [text_path], check=True, capture_output=True)
        ours_s = time.perf_counter() - t0

        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, min_frequency=2,
                                      special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        t0 = time.perf_counter()
        hf.train([text_path], trainer)
        hf_s = time.perf_counter() - t0

        with open(text_path, encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n") if l][:20000]
        ours = Tokenizer.from_file(ours_path)
        n_ours = sum(len(e.ids) for e in ours.encode_batch(lines, add_special_tokens=False))
        n_hf = sum(len(e.ids) for e in hf.encode_batch(lines, add_special_tokens=False))

    print(f"corpus: {nbytes / 1e6:.1f} MB, vocab {args.vocab_size}, {os.cpu_count()} cores")
    print(f"nemokit train (whole process): {ours_s:7.3f} s, {ours.get_vocab_size()} tokens")
    print(f"HF tokenizers train():         {hf_s:7.3f} s, {hf.get_vocab_size()} tokens")
    print(f"tokens for 20k lines: nemokit vocab {n_ours}, HF vocab {n_hf} ({n_ours / n_hf:.3f}x)")
    print(f"ratio nemokit/HF speed: {hf_s / ours_s:.2f}x")
    return 0 if abs(n_ours / n_hf - 1) < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
