#!/usr/bin/env bash
# sft_make_omni_chats: runs plugins/stage_sft/corpus/make_omni_chats.sh into fresh folders and
# checks what it wrote: the counts; every record's shape; every referenced PNG (decoded here with
# zlib, CRCs checked) and WAV (16-bit PCM mono) exists and reads; Fashion-MNIST images and labels
# equal the IDX files' (read here independently), digits equal scikit-learn's CSV upscaled,
# every video shows its answer's digit moving its answer's way; spoken words are what espeak-ng
# says for them; no eval or val image, frame or word (or homophone) is in train, except the
# "speech_voice" eval's: train words whose clips are in a voice no train clip has; the RL tasks
# (rl-vision.jsonl) have their counts, shapes, readable images and right answers, and their
# Fashion-MNIST images are none of the chats'; a rerun is a no-op, lost files come back, two
# fresh runs give the same bytes, and bad source files are named. Exits 77 (skipped) when the source packages are not installed.
set -euo pipefail
src="${1:?usage: make_omni_chats_test.sh SOURCE_DIR}"
script="$src/plugins/stage_sft/corpus/make_omni_chats.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/omni-chats-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

fashion=/usr/share/datasets/fashion-mnist
for f in "$fashion/t10k-images-idx3-ubyte.gz" /usr/share/dict/american-english /usr/share/wordnet/index.noun; do
  [ -f "$f" ] || { echo "SKIP: $f missing (run scripts/setup-deps.sh)"; exit 77; }
done
for tool in espeak-ng python3 dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (run scripts/setup-deps.sh)"; exit 77; }
done
digits_in_deb=usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
digits_cache="${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/debs/python3-sklearn/digits.csv.gz"
if [ ! -f "/$digits_in_deb" ] && [ ! -f "$digits_cache" ] && ! apt-cache show python3-sklearn >/dev/null 2>&1; then
  echo "SKIP: python3-sklearn's digits are neither installed, cached nor downloadable"; exit 77
fi

out="$("$script" "$work/a")" || fail "make_omni_chats.sh failed"
echo "$out"
"$script" "$work/b" > /dev/null || fail "second fresh run failed"
tree_hash() { (cd "$1" && find train.jsonl val.jsonl eval.jsonl rl-vision.jsonl images audio video -type f -print0 | sort -z \
               | xargs -0 sha256sum | sha256sum); }
[ "$(tree_hash "$work/a")" = "$(tree_hash "$work/b")" ] || fail "two fresh runs differ"
digits="/$digits_in_deb"
[ -f "$digits" ] || digits="$digits_cache"

python3 - "$work/a" "$fashion" "$digits" "$work/check" <<'EOF'
import collections, gzip, hashlib, json, os, struct, subprocess, sys, wave, zlib

root, fashion, digits_csv, scratch = sys.argv[1:5]
os.makedirs(scratch, exist_ok=True)
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
PROMPTS = {"fashion": "<image>\nWhat is in this image?", "digits": "<image>\nWhich digit is this?",
           "speech": "<audio>\nWhat word is spoken?",
           "video": "<video>\nWhich digit moves across the frame, and which way?"}
MEDIA = {"fashion": "images", "digits": "images", "speech": "audios", "video": "videos"}
# Eval only: train words (not held out) spoken by a voice and at a rate no train clip has.
PROMPTS["speech_voice"], MEDIA["speech_voice"] = PROMPTS["speech"], "audios"
TRAIN_VOICES, EVAL_VOICE = [("en-us", "175"), ("en-us+f3", "140")], ("en-us+m7", "120")

def read_png(rel):
    """8-bit gray, non-interlaced PNG -> (width, height, pixel bytes); chunk CRCs checked."""
    b = open(os.path.join(root, rel), "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", f"{rel}: no PNG signature"
    pos, idat, ihdr, ended = 8, b"", None, False
    while pos < len(b):
        n, = struct.unpack(">I", b[pos:pos + 4])
        kind, data = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + data) == crc, f"{rel}: bad CRC in {kind}"
        pos += 12 + n
        if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT": idat += data
        elif kind == b"IEND": ended = True
    w, h, depth, colour, _, _, interlace = ihdr
    assert ended and (depth, colour, interlace) == (8, 0, 0), f"{rel}: {ihdr}"
    raw, rows, prev = zlib.decompress(idat), [], bytes(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            up, ul = prev[x], (prev[x - 1] if x else 0)
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + up) & 255
            elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - ul
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - ul)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
            else: assert f == 0, f"{rel}: filter {f}"
        prev = bytes(line)
        rows.append(prev)
    return w, h, b"".join(rows)

def check_wav(rel):
    with wave.open(os.path.join(root, rel)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getcomptype()) == (2, 1, "NONE"), rel
        assert w.getnframes() > w.getframerate() // 10, f"{rel}: {w.getnframes()} samples"

def idx(path, dims):
    d = gzip.open(path).read()
    shape = struct.unpack(">" + "I" * dims, d[4:4 + 4 * dims])
    return shape, d[4 + 4 * dims:]
(_, tr_img), (_, tr_lab) = idx(f"{fashion}/train-images-idx3-ubyte.gz", 3), idx(f"{fashion}/train-labels-idx1-ubyte.gz", 1)
(_, te_img), (_, te_lab) = idx(f"{fashion}/t10k-images-idx3-ubyte.gz", 3), idx(f"{fashion}/t10k-labels-idx1-ubyte.gz", 1)
digits = []
for line in gzip.open(digits_csv, "rt"):
    v = [int(float(x)) for x in line.split(",")]
    digits.append((v[:64], v[64]))
def upscale(px, size):
    return bytes((px[(y * 8 // size) * 8 + x * 8 // size] * 255 + 8) // 16 for y in range(size) for x in range(size))
sprites = {upscale(px, 16): label for px, label in digits}

def load(name):
    with open(os.path.join(root, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f]
train, val, ev = load("train.jsonl"), load("val.jsonl"), load("eval.jsonl")

def kind_of(r):
    user = next(m["content"] for m in r["messages"] if m["role"] == "user")
    if "kind" in r:  # eval: the record names it; the prompt must be that kind's
        assert PROMPTS.get(r["kind"]) == user, f"{r['kind']!r} with prompt {user!r}"
        return r["kind"]
    kinds = [k for k, p in PROMPTS.items() if p == user and k != "speech_voice"]
    assert len(kinds) == 1, f"unknown prompt {user!r}"
    return kinds[0]

pixels = collections.defaultdict(set)   # split -> decoded image/frame pixel hashes
words = collections.defaultdict(set)
counts = collections.Counter()
wav_checks, voice_clips = [], []
train_clips = collections.defaultdict(list)  # train word -> its clips
for split, rows in (("train", train), ("val", val), ("eval", ev)):
    for i, r in enumerate(rows, 1):
        where = f"{split}:{i}"
        k = kind_of(r)
        counts[split, k] += 1
        media = MEDIA[k]
        if split == "eval":
            assert list(r) == ["kind", "messages", media, "expected"], f"{where}: keys {list(r)}"
            assert r["kind"] == k and [m["role"] for m in r["messages"]] == ["user"], where
            answer = r["expected"]
        else:
            assert list(r) == ["messages", media], f"{where}: keys {list(r)}"
            assert [m["role"] for m in r["messages"]] == ["user", "assistant"], where
            answer = r["messages"][1]["content"]
        assert len(r[media]) == 1, where
        if k in ("fashion", "digits"):
            rel = r["images"][0]
            w, h, px = read_png(rel)
            assert (w, h) == (28, 28), f"{where}: {w}x{h}"
            pixels[split].add(hashlib.sha256(px).digest())
            name = os.path.basename(rel)[:-4]
            if k == "fashion":
                test = name.startswith("fm_test_")
                n = int(name.rsplit("_", 1)[1])
                assert test == (split == "eval"), f"{where}: {rel}"
                img, lab = (te_img, te_lab) if test else (tr_img, tr_lab)
                assert px == img[n * 784:(n + 1) * 784], f"{where}: {rel} is not Fashion-MNIST image {n}"
                assert answer == CLASSES[lab[n]], f"{where}: {rel} labelled {answer}, IDX says {CLASSES[lab[n]]}"
            else:
                n = int(name.split("_")[1])
                assert px == upscale(digits[n][0], 28), f"{where}: {rel} is not digit {n}"
                assert answer == str(digits[n][1]), f"{where}: {rel} labelled {answer}"
        elif k in ("speech", "speech_voice"):
            rel = r["audios"][0]
            check_wav(rel)
            if k == "speech_voice":
                assert split == "eval" and rel.endswith("_c.wav"), f"{where}: {rel}"
                voice_clips.append((rel, answer))
            else:
                assert rel.endswith("_a.wav" if split != "train" else ("_a.wav", "_b.wav")), f"{where}: {rel}"
                words[split].add(answer)
                wav_checks.append((rel, answer))
                if split == "train": train_clips[answer].append(rel)
        else:
            v = r["videos"][0]
            assert v["fps"] == 4 and len(v["frames"]) == 8, where
            assert v["frames"] == [f"{os.path.dirname(v['frames'][0])}/frame_{j:02d}.png" for j in range(8)], where
            lefts = []
            for j, rel in enumerate(v["frames"]):
                w, h, px = read_png(rel)
                assert (w, h) == (32, 32), f"{where}: {rel} {w}x{h}"
                pixels[split].add(hashlib.sha256(px).digest())
                cols = [x for x in range(32) if any(px[y * 32 + x] for y in range(32))]
                lefts.append(cols[0])
                if j == 0:
                    found = {sprites.get(bytes(px[(top + y) * 32 + x] for y in range(16) for x in range(lf, lf + 16)))
                             for top in range(17) for lf in (0, 16)} - {None}
            digit, way = answer.split(", ")
            assert way in ("left to right", "right to left"), f"{where}: {answer}"
            moves = lefts == sorted(lefts) if way == "left to right" else lefts == sorted(lefts, reverse=True)
            assert moves and lefts[0] != lefts[-1], f"{where}: {answer} but the digit's left edge goes {lefts}"
            assert found == {int(digit)}, f"{where}: {answer} but the first frame shows {found}"

print("counts:", dict(sorted(counts.items())))
assert counts["train", "fashion"] == 6000 and counts["val", "fashion"] == 200 and counts["eval", "fashion"] == 1000, counts
assert sum(counts[s, "digits"] for s in ("train", "val", "eval")) == len(digits) == 1797, counts
assert 250 <= counts["eval", "digits"] <= 450 and counts["val", "digits"] >= 40, counts
assert counts["train", "video"] == 400 and counts["val", "video"] == 20 and counts["eval", "video"] == 100, counts
assert len(words["train"]) + len(words["val"]) + len(words["eval"]) == 300, {s: len(w) for s, w in words.items()}
assert counts["train", "speech"] == 2 * len(words["train"]) and len(words["eval"]) >= 40, counts
assert counts["eval", "speech_voice"] == 60 and len({w for _, w in voice_clips}) == 60, counts
assert len({kind_of(r) for r in train[:100]}) >= 3, "train is not shuffled"
# The first Fashion-MNIST test images, by name, as published.
first = {r["images"][0]: r["expected"] for r in ev if r["kind"] == "fashion"}
assert first["images/fm_test_000000.png"] == "Ankle boot" and first["images/fm_test_000001.png"] == "Pullover"
assert first["images/fm_test_000002.png"] == "Trouser", first["images/fm_test_000002.png"]

# Nothing held out is taught: images and frames by their pixels, words by text and by sound.
for held in ("val", "eval"):
    assert not pixels[held] & pixels["train"], f"{len(pixels[held] & pixels['train'])} {held} images are in train"
    assert not words[held] & words["train"], f"{held} words in train: {sorted(words[held] & words['train'])[:5]}"
assert not pixels["val"] & pixels["eval"] and not words["val"] & words["eval"]
listed = sorted(set().union(*words.values()))
with open(f"{scratch}/words.txt", "w") as f:
    f.writelines(w + ".\n" for w in listed)
sounds = subprocess.run(["espeak-ng", "-q", "-x", "-v", "en-us", "-f", f"{scratch}/words.txt"], check=True,
                        capture_output=True, text=True).stdout.split("\n")[:len(listed)]
by_sound = collections.defaultdict(set)
for w, s in zip(listed, sounds):
    by_sound[s.strip()].add(w)
assert all(len(ws) == 1 for ws in by_sound.values()), [ws for ws in by_sound.values() if len(ws) > 1][:5]

# The spoken words are the answers: espeak-ng says them again, byte for byte, in each clip's voice.
def says(rel, word, voice):
    subprocess.run(["espeak-ng", "-v", voice[0], "-s", voice[1], "-w", f"{scratch}/again.wav", "--", word], check=True)
    return open(f"{scratch}/again.wav", "rb").read() == open(os.path.join(root, rel), "rb").read()
for suffix, voice in (("_a.wav", TRAIN_VOICES[0]), ("_b.wav", TRAIN_VOICES[1])):
    for rel, word in [c for c in wav_checks if c[0].endswith(suffix)][:6]:
        assert says(rel, word, voice), f"{rel} is not '{word}' in {voice}"

# speech_voice: known words, an unheard speaker. Each word is a train word; its clip sits beside
# the word's train clips (w_NNNN_c beside w_NNNN_a/_b), is none of them nor any train clip, and
# is espeak-ng's reading in EVAL_VOICE, a voice/rate pair that is not a train one.
assert EVAL_VOICE not in TRAIN_VOICES
digest = lambda rel: hashlib.sha256(open(os.path.join(root, rel), "rb").read()).digest()
train_digests = {digest(rel) for rels in train_clips.values() for rel in rels}
for i, (rel, word) in enumerate(voice_clips):
    assert word in words["train"] and word not in words["val"] | words["eval"], f"{rel}: '{word}' is not a train word"
    assert sorted(train_clips[word]) == [rel[:-len("_c.wav")] + s for s in ("_a.wav", "_b.wav")], (rel, train_clips[word])
    assert digest(rel) not in train_digests, f"{rel} equals a train clip"
    if i < 6:
        assert says(rel, word, EVAL_VOICE), f"{rel} is not '{word}' in {EVAL_VOICE}"
        assert not any(says(rel, word, v) for v in TRAIN_VOICES), f"{rel} is '{word}' in a train voice"

# The RL tasks: the chats' questions (the digit sum's own), images that read, answers from the
# sources; Fashion-MNIST images that no chat shows, digits from the chats' train split.
SUM_PROMPT = "<image><image>\nWhat is the sum of these two digits? Answer with the number only."
TASKS = {"fashion": (PROMPTS["fashion"], "exact_match", 1), "digits": (PROMPTS["digits"], "exact_match", 1),
         "digit_sum": (SUM_PROMPT, "arithmetic", 2)}
chat_pixels = pixels["train"] | pixels["val"] | pixels["eval"]
rl = load("rl-vision.jsonl")
rl_counts, rl_fashion, rl_digits, rl_answers = collections.Counter(), set(), set(), {}
for i, r in enumerate(rl, 1):
    where = f"rl-vision:{i}"
    assert list(r) == ["prompt", "images", "expected_answer", "environment", "task"], f"{where}: keys {list(r)}"
    t = r["task"]
    assert t in TASKS, f"{where}: task {t!r}"
    rl_counts[t] += 1
    prompt, env, n_images = TASKS[t]
    assert r["prompt"] == [{"role": "user", "content": prompt}], f"{where}: {r['prompt']}"
    assert r["environment"] == env and len(r["images"]) == n_images, where
    rl_answers[tuple(r["images"])] = r["expected_answer"]
    labels = []
    for rel in r["images"]:
        w, h, px = read_png(rel)
        assert (w, h) == (28, 28), f"{where}: {rel} {w}x{h}"
        digest = hashlib.sha256(px).digest()
        name = os.path.basename(rel)[:-4]
        if t == "fashion":
            assert name.startswith("rl_fm_"), f"{where}: {rel}"
            n = int(name[len("rl_fm_"):])
            assert px == tr_img[n * 784:(n + 1) * 784], f"{where}: {rel} is not Fashion-MNIST image {n}"
            labels.append(CLASSES[tr_lab[n]])
            assert digest not in chat_pixels, f"{where}: {rel} is an image the chats show"
            assert digest not in rl_fashion, f"{where}: {rel} repeats an RL image"
            rl_fashion.add(digest)
        else:
            assert name.startswith("dg_"), f"{where}: {rel}"
            n = int(name[len("dg_"):])
            assert px == upscale(digits[n][0], 28), f"{where}: {rel} is not digit {n}"
            labels.append(digits[n][1])
            assert digest in pixels["train"] and digest not in pixels["val"] | pixels["eval"], f"{where}: {rel} is held out"
            if t == "digits": rl_digits.add(n)
    want = labels[0] if t == "fashion" else str(sum(labels))
    assert r["expected_answer"] == want, f"{where}: {r['images']} answered {r['expected_answer']!r}, the sources say {want!r}"
print("rl-vision counts:", dict(sorted(rl_counts.items())))
assert rl_counts == {"fashion": 2000, "digits": 300, "digit_sum": 300}, rl_counts
assert len(rl_digits) == 300, f"{len(rl_digits)} different digits asked"
assert len({r["task"] for r in rl[:50]}) == 3, "rl-vision is not shuffled"
assert len({r["expected_answer"] for r in rl if r["task"] == "digit_sum"}) >= 15, "digit sums cover too few values"
# Known items: Fashion-MNIST's training labels as published (the RL images are train images
# 6,200..8,199, after the chats' 6,200), load_digits' row 1 (a 1), 619 (a 3) and 1366 (a 0).
assert rl_answers[("images/rl_fm_006200.png",)] == "Trouser" and rl_answers[("images/rl_fm_006202.png",)] == "T-shirt/top"
assert rl_answers[("images/rl_fm_008199.png",)] == "Bag", rl_answers[("images/rl_fm_008199.png",)]
assert rl_answers[("images/dg_0619.png",)] == "3" and rl_answers[("images/dg_0001.png", "images/dg_1366.png")] == "1"
print("json and media checks passed")
EOF

# Idempotent and clean: a rerun does nothing; no staging folder is left; lost files come back.
"$script" "$work/a" | grep -q "up to date" || fail "rerun was not a no-op"
ls -a "$work/a" | grep -q '^\.staging' && fail "staging folder left behind"
rm "$work/a/val.jsonl" "$work/a/rl-vision.jsonl"
rm -r "$work/a/video"
"$script" "$work/a" > /dev/null
[ "$(tree_hash "$work/a")" = "$(tree_hash "$work/b")" ] || fail "the rebuilt output differs"

# Bad source files are reported by name.
tool="$(ls "$work"/a/.tools/make_omni_chats-* | head -n1)"
mkdir "$work/bad"
cp "$fashion"/*.gz "$work/bad/"
head -c 5000 < <(gzip -dc "$fashion/t10k-labels-idx1-ubyte.gz") | gzip > "$work/bad/t10k-labels-idx1-ubyte.gz"
err="$("$tool" "$work/bad" "$digits" /usr/share/dict/american-english /usr/share/wordnet "$work/out1" 2>&1)" \
  && fail "a short label file was accepted"
[[ "$err" == *"t10k-labels-idx1-ubyte.gz: IDX payload is 4992 bytes, the header says 10000"* ]] || fail "unclear error: $err"
gzip -dc "$fashion/t10k-labels-idx1-ubyte.gz" > "$work/bad/t10k-labels-idx1-ubyte.gz"
err="$("$tool" "$work/bad" "$digits" /usr/share/dict/american-english /usr/share/wordnet "$work/out2" 2>&1)" \
  && fail "an uncompressed label file was accepted"
[[ "$err" == *"t10k-labels-idx1-ubyte.gz: not gzip-compressed"* ]] || fail "unclear error: $err"
{ head -n 2 < <(gzip -dc "$digits"); echo "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,17,0,0,0,0"; } \
  | gzip > "$work/bad-digits.csv.gz"
err="$("$tool" "$fashion" "$work/bad-digits.csv.gz" /usr/share/dict/american-english /usr/share/wordnet "$work/out3" 2>&1)" \
  && fail "a digit pixel of 17 was accepted"
[[ "$err" == *"bad-digits.csv.gz:3: pixel 60 is 17, not in 0..16"* ]] || fail "unclear error: $err"
echo "1 passed, 0 failed"
