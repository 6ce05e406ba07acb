#!/usr/bin/env bash
# sft_make_chats: runs plugins/stage_sft/corpus/make_chats.sh into fresh folders and checks what it
# wrote: every line is a valid conversation, the held-out words never reach train.jsonl, eval
# agrees with val, a rerun is a no-op, a lost file comes back and two fresh runs give the same
# bytes. Exits 77 (skipped) when the source packages are not installed.
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
echo "$out"
"$script" "$work/b" > /dev/null || fail "second fresh run failed"
for f in train.jsonl val.jsonl eval.jsonl; do
  cmp -s "$work/a/$f" "$work/b/$f" || fail "$f differs between two fresh runs"
done

python3 - "$work/a" <<'EOF'
import json, re, sys
from collections import Counter

root = sys.argv[1]

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

def kind(msgs):
    user = next(m["content"] for m in msgs if m["role"] == "user")
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

held_out = {w for r in val for k, w in [kind(r["messages"])] if w}
print("counts:", dict(sorted(counts.items())))
leaked = held_out & train_words
assert not leaked, f"held-out words in train prompts: {sorted(leaked)[:10]}"
assert 20000 <= len(train) <= 40000, f"train has {len(train)} conversations"
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
    else:
        assert e["match"] == "exact"
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
mkdir "$work/edited"
cp "$src"/plugins/stage_sft/corpus/*.{sh,cpp,hpp} "$work/edited/"
echo "# edited" >> "$work/edited/make_chats.sh"
bash "$work/edited/make_chats.sh" "$work/a" | grep -q "up to date" && fail "edited script did not rebuild"
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
