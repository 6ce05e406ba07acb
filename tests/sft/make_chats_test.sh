#!/usr/bin/env bash
# sft_make_chats: runs plugins/stage_sft/corpus/make_chats.sh into fresh folders and checks what it
# wrote: every line is a valid conversation, the held-out words never reach train.jsonl, the RL
# answer-format chats are right and hold none of the RL data prep's val/test items (recomputed here
# from make_tasks.sh's output and the prep's hash), eval agrees with val and train, a rerun is a
# no-op, a lost file comes back and two fresh runs give the same bytes. Exits 77 (skipped) when the source packages are not installed.
set -euo pipefail
src="${1:?usage: make_chats_test.sh SOURCE_DIR}"
script="$src/plugins/stage_sft/corpus/make_chats.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/sft-chats-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for f in /usr/share/wordnet/data.noun /usr/share/dict/american-english \
         /usr/share/games/fortunes/riddles /usr/share/misc/countries.gz; do
  [ -f "$f" ] || { echo "SKIP: $f missing (run scripts/setup-deps.sh)"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

out="$("$script" "$work/a")" || fail "make_chats.sh failed"
bash "$src/plugins/stage_rl/corpus/make_tasks.sh" "$work/rl" > /dev/null || fail "make_tasks.sh failed"
echo "$out"
"$script" "$work/b" > /dev/null || fail "second fresh run failed"
for f in train.jsonl val.jsonl eval.jsonl; do
  cmp -s "$work/a/$f" "$work/b/$f" || fail "$f differs between two fresh runs"
done

python3 - "$work/a" "$work/rl" <<'EOF'
import json, re, sys
from collections import Counter

root, rl_root = sys.argv[1], sys.argv[2]

def load(name):
    rows = []
    with open(f"{root}/{name}", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"FAIL: {name}:{n}: not JSON: {e}")
    return rows

def check_messages(where, msgs, needs_answer):
    assert isinstance(msgs, list) and msgs, f"{where}: empty messages"
    roles = [m["role"] for m in msgs]
    assert all(set(m) == {"role", "content"} for m in msgs), f"{where}: extra keys"
    assert all(isinstance(m["content"], str) and m["content"] for m in msgs), f"{where}: empty turn"
    body = roles[1:] if roles[0] == "system" else roles
    assert "system" not in body, f"{where}: system turn not first"
    want = ["user", "assistant"] * (len(body) // 2 + 1)
    want = want[: len(body)]
    assert body == want, f"{where}: roles {roles}"
    assert body[-1] == ("assistant" if needs_answer else "user"), f"{where}: last turn {roles}"

DEFINE = re.compile(r"^Define the word ([a-z]+)\.$")
USE = re.compile(r"^Use the word ([a-z]+) in a sentence\.$")
CAPITAL = re.compile(r"^What is the capital of (.+)\?$")
ARITH = re.compile(r"^What is (\d+) ([-+*]) (\d+)\? Answer with the number only\.$")
UNSCRAMBLE = re.compile(r'^Unscramble the letters "([a-z]+)" into an English word\. Answer with the word only\.$')
CHOICE = re.compile(r"^(Which word means \"(.+)\"\?|(What is|Which city is) the capital of (.+)\?)\n"
                    r"A\) (.+)\nB\) (.+)\nC\) (.+)\nD\) (.+)\nAnswer with the letter only\.$")

def kind(msgs):
    user = next(m["content"] for m in msgs if m["role"] == "user")
    if ARITH.match(user):
        return "arithmetic", None
    if UNSCRAMBLE.match(user):
        return "unscramble", None
    m = CHOICE.match(user)
    if m:
        return ("define_choice" if m.group(2) else "capital_choice"), None
    for name, rx in (("define", DEFINE), ("use", USE)):
        m = rx.match(user)
        if m:
            return name, m.group(1)
    if "capital" in user:
        return "capital", None
    return "riddle", None

train, val, ev = load("train.jsonl"), load("val.jsonl"), load("eval.jsonl")
counts = Counter()
train_words, train_capital = set(), {}
for split, rows in (("train", train), ("val", val)):
    for i, r in enumerate(rows, 1):
        assert list(r) == ["messages"], f"{split}:{i}: keys {list(r)}"
        check_messages(f"{split}:{i}", r["messages"], True)
        k, word = kind(r["messages"])
        counts[split, k] += 1
        answer = r["messages"][-1]["content"]
        if k == "define":
            assert re.match(rf"^{word} \((noun|verb|adjective|adverb)\): \S", answer), f"{split}:{i}: {answer}"
            assert '"' not in answer, f"{split}:{i}: example left in a definition"
        if k == "use":
            assert re.search(rf"(?i)(?<![a-z]){word}(?![a-z])", answer), f"{split}:{i}: {answer}"
        if split == "train" and word:
            train_words.add(word)
        if split == "train" and k == "capital":
            q = r["messages"][-2]["content"]
            if CAPITAL.match(q):
                train_capital[CAPITAL.match(q).group(1)] = answer

# The RL answer formats: answers are right, and no RL val/test item (split as
# plugins/stage_rl/src/prep/rl_data_prep.cpp does: a seeded FNV-1a of the line, seed 1234,
# weights 70,25,5 as the tiny RL configs) or anagram of a held-out word is taught.
M = (1 << 64) - 1
def prep_split(line, seed=1234, weights=(70, 25, 5)):
    h = 0xcbf29ce484222325 ^ ((seed * 0x9e3779b97f4a7c15) & M)
    for b in line.encode():
        h = ((h ^ b) * 0x100000001b3) & M
    h = ((h ^ (h >> 30)) * 0xbf58476d1ce4e5b9) & M
    h = ((h ^ (h >> 27)) * 0x94d049bb133111eb) & M
    h ^= h >> 31
    b = h % sum(weights)
    return 0 if b < weights[0] else 1 if b < weights[0] + weights[1] else 2
rl_held_prompts, rl_held_letters, rl_splits = set(), set(), Counter()
for name in ("arithmetic", "unscramble", "definitions", "capitals"):
    with open(f"{rl_root}/{name}.jsonl", encoding="utf-8") as f:
        for line in f:
            s = prep_split(line.rstrip("\n"))
            rl_splits[s] += 1
            if s == 0:
                continue
            t = json.loads(line)
            rl_held_prompts.add(t["prompt"][0]["content"])
            for w in (t.get("word"), t["expected_answer"] if name == "unscramble" else None):
                if w:
                    rl_held_letters.add("".join(sorted(w)))
assert 1100 <= rl_splits[1] + rl_splits[2] <= 1500, rl_splits
dictionary = set(open("/usr/share/dict/american-english", encoding="utf-8").read().split())
formats = ("arithmetic", "unscramble", "define_choice", "capital_choice")
for split, rows in (("train", train), ("val", val)):
    for i, r in enumerate(rows, 1):
        k, _ = kind(r["messages"])
        if k not in formats:
            continue
        assert split == "train", f"{split}:{i}: answer-format chat outside train"
        assert len(r["messages"]) == 2, f"train:{i}: {r['messages']}"
        q, a = r["messages"][0]["content"], r["messages"][1]["content"]
        assert q not in rl_held_prompts, f"train:{i}: an RL val/test prompt is taught: {q}"
        if k == "arithmetic":
            x, op, y = ARITH.match(q).groups()
            assert a == str(eval(f"{x} {op} {y}")), f"train:{i}: {q} -> {a}"
        elif k == "unscramble":
            letters = UNSCRAMBLE.match(q).group(1)
            assert sorted(a) == sorted(letters) and a != letters and a in dictionary, f"train:{i}: {q} -> {a}"
            assert "".join(sorted(a)) not in rl_held_letters, f"train:{i}: RL held-out word {a}"
        else:
            m = CHOICE.match(q)
            assert a in "ABCD" and len(a) == 1, f"train:{i}: {a}"
            chosen = m.group(5 + "ABCD".index(a))
            if k == "define_choice":
                assert "".join(sorted(chosen)) not in rl_held_letters, f"train:{i}: RL held-out word {chosen}"
            else:
                assert train_capital[m.group(4)] == f"The capital of {m.group(4)} is {chosen}.", f"train:{i}: {q} -> {a}"
assert counts["train", "arithmetic"] >= 1000 and counts["train", "unscramble"] >= 1000, counts
# The drills past the RL range are there: every sum of two numbers to 99 that the RL tasks lack.
drills = {r["messages"][0]["content"] for r in train if kind(r["messages"])[0] == "arithmetic"
          and max(int(n) for n in ARITH.match(r["messages"][0]["content"]).group(1, 3)) > 20}
assert sum(1 for q in drills if " + " in q) == 100 * 100 - 21 * 21, len(drills)
assert counts["train", "define_choice"] >= 500 and counts["train", "capital_choice"] >= 200, counts
taught_prompts = {r["messages"][-2]["content"] for r in train}

held_out = {w for r in val for k, w in [kind(r["messages"])] if w}
print("counts:", dict(sorted(counts.items())))
leaked = held_out & train_words
assert not leaked, f"held-out words in train prompts: {sorted(leaked)[:10]}"
assert 30000 <= len(train) <= 60000, f"train has {len(train)} conversations"
assert 500 <= len(held_out) <= 3000, f"{len(held_out)} held-out words"
assert counts["train", "define"] > 10000 and counts["train", "use"] > 5000
assert counts["train", "capital"] >= 6 * 150 and counts["train", "riddle"] >= 50
assert sum(1 for r in train if r["messages"][0]["role"] == "system") > 100, "few system turns"
# The shuffle interleaves kinds: the first 100 conversations are not all one kind.
assert len({kind(r["messages"])[0] for r in train[:100]}) >= 3, "train is not shuffled"
# Quotes and non-ASCII text survive the round trip.
text = open(f"{root}/train.jsonl", encoding="utf-8").read()
assert "Åland Islands" in text and '\\"' in text

val_define = {}
for r in val:
    k, w = kind(r["messages"])
    if k == "define":
        val_define.setdefault(w, []).append(r["messages"][-1]["content"])
ev_counts = Counter(e["kind"] for e in ev)
assert ev_counts["define"] == 200 and ev_counts["capital"] == 100, ev_counts
assert all(ev_counts[k] == 50 for k in formats), ev_counts
for i, e in enumerate(ev, 1):
    assert list(e) == ["kind", "messages", "expected", "match"], f"eval:{i}: keys {list(e)}"
    check_messages(f"eval:{i}", e["messages"], False)
    q = e["messages"][-1]["content"]
    if e["kind"] == "define":
        assert e["match"] == "prefix"
        w = DEFINE.match(q).group(1)
        answers = val_define.get(w, [])
        assert len(answers) == 1 and answers[0].startswith(e["expected"]), f"eval:{i}: {w} vs val {answers}"
        assert w not in train_words
    elif e["kind"] in formats:
        assert e["match"] == "exact" and kind(e["messages"])[0] == e["kind"], f"eval:{i}: {e}"
        assert q not in taught_prompts, f"eval:{i}: taught in train: {q}"
        if e["kind"] == "arithmetic":
            x, op, y = ARITH.match(q).groups()
            assert e["expected"] == str(eval(f"{x} {op} {y}")), f"eval:{i}: {e}"
        elif e["kind"] == "unscramble":
            assert sorted(e["expected"]) == sorted(UNSCRAMBLE.match(q).group(1)), f"eval:{i}: {e}"
        else:
            assert e["expected"] in ("A", "B", "C", "D"), f"eval:{i}: {e}"
    else:
        assert e["kind"] == "capital" and e["match"] == "exact"
        country = CAPITAL.match(q).group(1)
        assert train_capital.get(country) == e["expected"], f"eval:{i}: {country} not taught as {e['expected']}"
print("json checks passed")
EOF

# Idempotent and clean: a rerun does nothing; no staging folder is left; a lost file comes back.
"$script" "$work/a" | grep -q "up to date" || fail "rerun was not a no-op"
ls -a "$work/a" | grep -q '^\.staging' && fail "staging folder left behind"
rm "$work/a/val.jsonl"
"$script" "$work/a" > /dev/null
cmp -s "$work/a/val.jsonl" "$work/b/val.jsonl" || fail "rebuilt val.jsonl differs"

# An edited script invalidates the stamp (the generator, whose sources are unchanged, is reused).
edited="$work/edited/plugins/stage_sft/corpus"
mkdir -p "$edited" "$work/edited/plugins/stage_rl/corpus"
cp "$src"/plugins/stage_sft/corpus/*.{sh,cpp,hpp} "$edited/"
cp "$src"/plugins/stage_rl/corpus/rl_tasks.{hpp,cpp} "$work/edited/plugins/stage_rl/corpus/"
echo "# edited" >> "$edited/make_chats.sh"
bash "$edited/make_chats.sh" "$work/a" | grep -q "up to date" && fail "edited script did not rebuild"
cmp -s "$work/a/train.jsonl" "$work/b/train.jsonl" || fail "rebuild after an edit changed train.jsonl"

# Bad input is reported with its file and line.
tool="$(ls "$work"/a/.tools/make_chats-* | head -n1)"
printf '# header\n004:AF:AFG:Afghanistan\n' > "$work/bad-countries"
err="$("$tool" /usr/share/wordnet /usr/share/dict/american-english /usr/share/games/fortunes/riddles \
        "$work/bad-countries" "$work" 2>&1)" && fail "a truncated countries line was accepted"
[[ "$err" == *"bad-countries:2: expected 5 ':'-separated fields"* ]] || fail "unclear error: $err"
printf '004:AF:AFG:Afghan\xffistan:Kabul\n' > "$work/bad-countries"
err="$("$tool" /usr/share/wordnet /usr/share/dict/american-english /usr/share/games/fortunes/riddles \
        "$work/bad-countries" "$work" 2>&1)" && fail "invalid UTF-8 was accepted"
[[ "$err" == *"bad-countries:1: invalid UTF-8"* ]] || fail "unclear error: $err"
echo "1 passed, 0 failed"
