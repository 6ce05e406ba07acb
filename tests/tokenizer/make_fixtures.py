#!/usr/bin/env python3
"""Writes the tokenizer test fixtures under tests/tokenizer/fixtures/.

The fixtures let CI check nemokit's tokenizer against Hugging Face `tokenizers` without Python:

  sample.txt              text to encode: KJV verses, fortunes, and lines written here to cover
                          non-ASCII scripts, emoji, numbers, whitespace runs and special tokens
  train_corpus.txt        a small corpus (KJV + fortunes) that the C++ test trains on
  hf_<name>.json          tokenizers that Hugging Face `tokenizers` trained (full KJV + fortunes)
  hf_<name>.ids           what `tokenizers` encodes for each line of sample.txt with hf_<name>.json
  hf_<name>.whole.ids     the same for all of sample.txt as one text (newlines and all)
  ours_trained.json       what `nemokit tokenizer train` wrote for train_corpus.txt
  ours_trained.ids        what `tokenizers` encodes for each line of sample.txt with that file
  fuzz.txt                seeded random lines mixing scripts, spaces, marks, emoji and added tokens
  variants/<name>.json    a small `tokenizers`-trained vocab, each with one pipeline option changed
                          (ignore_merges, prefix space, Split behaviors, added-token flags)
  variants/<name>.ids     what `tokenizers` encodes for each line of fuzz.txt with it

Needs: Debian's bible-kjv and fortunes packages, `pip install tokenizers`, and the nemokit
tokenizer command (pass the built tokenizer_tool binary, or `nemokit` with --nemokit-subcommand).

    python3 tests/tokenizer/make_fixtures.py --tool build/tests/tokenizer/tokenizer_tool
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers import AddedToken

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

# Fortune categories that are fine to ship as test data (the offensive-leaning ones are left out).
FORTUNE_FILES = [
    "computers", "cookie", "definitions", "education", "fortunes", "goedel", "humorists", "kids",
    "law", "linux", "literature", "magic", "miscellaneous", "people", "pets", "platitudes",
    "riddles", "science", "songs-poems", "startrek", "tao", "wisdom", "work", "zippy",
    "ascii-art", "translate-me",
]

GPT4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Lines that real English text rarely has but a tokenizer must get right.
EXTRA_LINES = [
    "Ünïcödé: café, naïve, façade, Straße, smørrebrød, Ångström, İstanbul, ǅ",
    "Ελληνικά: Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
    "Русский: В начале было Слово, и Слово было у Бога.",
    "中文：太初有道，道与神同在，道就是神。 日本語：初めに言があった。 한국어: 태초에 말씀이 계시니라",
    "العربية: في البدء كان الكلمة  עברית: בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "हिन्दी: आदि में वचन था, और वचन परमेश्वर के साथ था। ไทย: ในปฐมกาล",
    "Emoji: 🙂 👍🏽 👨‍👩‍👧‍👦 🇩🇪🇯🇵 ❤️ 🤖🚀✨ 🏳️‍🌈 (ZWJ sequences, flags, skin tones)",
    "Numbers: 0 7 42 1234567890 3.14159 -273.15 1,000,000 1e-9 0x7FFF 2026-11-23 12:34:56",
    "Digits in words: abc123def 4real B2B 9to5 v1.2.3-rc4 ４２ ١٢٣ ½ ²³ Ⅻ",
    "Whitespace:    four spaces,\ttab,\t\ttwo tabs,  trailing   ",
    "        leading spaces and a lone\u00a0no-break space and an ideographic\u3000space",
    "Contractions: I'm, you're, he's, we've, they'll, I'd, DON'T, It'S, ’curly’ 'quotes'",
    "Punctuation runs: ... !!! ??? --- *** ;;; ::: \"\"\" ''' ``` ~~~ <<<>>> {[()]} @#$%^&*",
    "Special tokens inline: <|endoftext|>Hello<|endoftext|> <|im_start|>user\\nhi<|im_end|>",
    "Added tokens: In the New Testament, the <mask> is near <mask>  the end.",
    "Code: for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product",
    "URL: https://example.org/path?q=1&r=two#frag  mail: someone@example.com",
    "Mixed: naïve café ☕ costs €3.50 — or £2.90 — in 2026; ∑ x² ≤ ∞ ≠ √2 ≈ 1.414",
    "",
    "   ",
    "Ends with many spaces" + " " * 40,
    "a" * 300,
    "x" + " " * 200 + "y",
    "Zalgo: Z̵̧̛̗͎a̶̢͔͓l̴̨̡̛g̷̢̛o̸̧̢",
]


def bible_verses():
    out = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True, capture_output=True)
    lines = out.stdout.decode("utf-8").splitlines()
    # "Ge1:1 In the beginning ..." -> keep the reference too; it exercises letters+digits.
    return [l for l in lines if l.strip()]


def fortunes():
    items = []
    for name in FORTUNE_FILES:
        with open(os.path.join("/usr/share/games/fortunes", name), encoding="utf-8") as f:
            items.extend(x.strip("\n") for x in f.read().split("\n%\n") if x.strip())
    return items


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def train_hf(name, pre_tokenizer, vocab_size, specials, corpus_path, added=(), legacy_merges=False):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([corpus_path], trainer)
    if added:
        tok.add_tokens(list(added))
    doc = json.loads(tok.to_str())
    if legacy_merges:
        # The older "left right" merge form, which tokenizer.json files in the wild still use.
        doc["model"]["merges"] = [" ".join(m) for m in doc["model"]["merges"]]
    path = os.path.join(OUT, f"hf_{name}.json")
    write(path, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    return Tokenizer.from_file(path)


FUZZ_PIECES = list("abcdeABCDE xyz019'sStTmMlLdDrReEvV") + [
    "'", "’", " ", "  ", "\t", "\r", "\u0085", "\u00a0", "\u2028", "\u2029", "\u3000", "\u200b",
    "\u1680", "\u000b", "\u000c", "é", "ü", "ß", "ſ", "\u212a", "İ", "ǅ", "Ⅻ", "½", "²", "٣", "４",
    "中", "文", "😀", "👍🏽", "\u0301", "\u200d", "!", "?", ".", ",", "-", "_", "<", ">", "|", "$", "€",
    "\ufeff", "\U0001F1E9", "ꙮ", "ㄱ", "\u0e01", "\u0300", "\x00", "\x7f", "\x1b",
    "<|endoftext|>", "<mask>", "New Testament", "<|im_end|>"]


def fuzz_lines(count, seed=20261123):
    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def make_variants(corpus_path, lines):
    """One small vocab, then copies with one option changed each: the options real tokenizer.json
    files use that the three big fixtures do not."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train([corpus_path], trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<|endoftext|>", "<|im_end|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False),
                    AddedToken("New Testament", single_word=True, rstrip=True, normalized=True)])
    base = json.loads(tok.to_str())

    def split(pattern, behavior, invert=False):
        def edit(d):
            d["pre_tokenizer"]["pretokenizers"].insert(
                0, {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert})
        return edit

    def strip_both(d):
        d["added_tokens"][1].update(lstrip=True, rstrip=True)  # <|im_end|>

    variants = {
        "base": lambda d: None,
        "ignore_merges": lambda d: d["model"].update(ignore_merges=True),
        "prefix_space": lambda d: d["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space=True),
        "strip_special": strip_both,
        "merged_with_previous": split({"String": "e"}, "MergedWithPrevious"),
        "merged_with_next_inverted": split({"Regex": r"\s"}, "MergedWithNext", True),
        "contiguous": split({"Regex": "[0-9 ]"}, "Contiguous"),
        "removed": split({"Regex": "a+"}, "Removed"),
    }
    out_dir = os.path.join(OUT, "variants")
    os.makedirs(out_dir, exist_ok=True)
    for name, edit in variants.items():
        doc = json.loads(json.dumps(base))
        edit(doc)
        path = os.path.join(out_dir, f"{name}.json")
        write(path, json.dumps(doc, ensure_ascii=False) + "\n")
        t = Tokenizer.from_file(path)
        write_ids(os.path.join(out_dir, f"{name}.ids"),
                  [e.ids for e in t.encode_batch(lines, add_special_tokens=False)])


def write_ids(path, rows):
    write(path, "".join(" ".join(map(str, r)) + "\n" for r in rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True,
                    help="the nemokit tokenizer command (e.g. build/tests/tokenizer/tokenizer_tool)")
    ap.add_argument("--tool-prefix", default="",
                    help="words before train/encode, e.g. 'tokenizer' when --tool is nemokit")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    verses = bible_verses()
    items = fortunes()
    full_corpus = "\n".join(verses) + "\n" + "\n".join(items) + "\n"

    # sample.txt: every 197th verse, every 83rd fortune, then the hand-written lines.
    sample = verses[::197] + [l for it in items[::83] for l in it.split("\n")] + EXTRA_LINES
    sample_text = "\n".join(sample) + "\n"
    write(os.path.join(OUT, "sample.txt"), sample_text)
    # train_corpus.txt: small enough that training it is part of the unit tests.
    train_text = "\n".join(verses[:1000]) + "\n" + "\n".join(items[:300]) + "\n" + "\n".join(EXTRA_LINES) + "\n"
    write(os.path.join(OUT, "train_corpus.txt"), train_text)

    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = os.path.join(tmp, "corpus.txt")
        write(corpus_path, full_corpus + "\n".join(EXTRA_LINES) + "\n")
        tokenizers = {
            # GPT-2 style: ByteLevel does the regex split and adds a prefix space; "a b" merges.
            "gpt2": train_hf("gpt2", pre_tokenizers.ByteLevel(add_prefix_space=True), 2000,
                             ["<|endoftext|>", "<|pad|>"], corpus_path,
                             added=[AddedToken("New Testament", normalized=True)],
                             legacy_merges=True),
            # GPT-4 style: an explicit Split with the cl100k pattern, then ByteLevel without regex;
            # chat specials, and a <mask> token that swallows the whitespace on its left.
            "gpt4": train_hf("gpt4", pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), 3000,
                ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], corpus_path,
                added=[AddedToken("<mask>", special=True, lstrip=True, normalized=False)]),
            # Digits split one by one before GPT-2's regex (as several open models do).
            "digits": train_hf("digits", pre_tokenizers.Sequence([
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), 1000,
                ["<|endoftext|>"], corpus_path),
        }
        fuzz = fuzz_lines(250)
        write(os.path.join(OUT, "fuzz.txt"), "\n".join(fuzz) + "\n")
        make_variants(corpus_path, fuzz)
        for name, tok in tokenizers.items():
            rows = [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)]
            write_ids(os.path.join(OUT, f"hf_{name}.ids"), rows)
            write_ids(os.path.join(OUT, f"hf_{name}.whole.ids"),
                      [tok.encode(sample_text, add_special_tokens=False).ids])

    # Our trainer's output must load in Hugging Face and encode there as it does in nemokit.
    ours = os.path.join(OUT, "ours_trained.json")
    cmd = [args.tool] + args.tool_prefix.split() + [
        "train", "--vocab-size", "1200", "--special", "<|endoftext|>", "--special", "<|im_start|>",
        "--special", "<|im_end|>", "--threads", "2", "--out", ours,
        os.path.join(OUT, "train_corpus.txt")]
    subprocess.run(cmd, check=True)
    tok = Tokenizer.from_file(ours)
    write_ids(os.path.join(OUT, "ours_trained.ids"),
              [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)])
    print(f"fixtures written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
