"""The intent featurizer, version "vbhash-1" (Python half).

It must stay identical to models/src/intent/featurize.rs: the golden file
fixtures/models/intent.golden.jsonl, written by train_intent.py, is checked
by the Rust tests. Change both together and bump VERSION.

Text -> sparse counts over 2^14 buckets:
  1. normalise each character: full-width ASCII (U+FF01..U+FF5E) to ASCII,
     U+3000 and U+2019 to space and apostrophe, A-Z and Latin-1 capitals to
     lower case;
  2. classify: word characters are a-z, 0-9, the apostrophe and Latin letters
     U+00DF..U+024F (except U+00F7); CJK characters are U+3040..U+30FF,
     U+3400..U+4DBF, U+4E00..U+9FFF, U+F900..U+FAFF; everything else separates;
  3. tokens: runs of word characters (apostrophes trimmed from both ends,
     empty runs dropped), and every CJK character on its own; chunks: the
     same words, and maximal runs of CJK characters;
  4. features: "w|tok" per token, "b|tok1|tok2" per adjacent token pair,
     "c|x" per character of a chunk, and "c|xy", "c|xyz" per 2- and 3-gram
     of "<chunk>";
  5. bucket = FNV-1a-32(utf8(feature)) & (2^14 - 1); value = count.
The model L2-normalises the vector itself.
"""

VERSION = "vbhash-1"
BUCKETS = 1 << 14

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _fold(c: str) -> str:
    cp = ord(c)
    if 0xFF01 <= cp <= 0xFF5E:
        cp -= 0xFEE0
    elif cp == 0x3000:
        cp = 0x20
    elif cp == 0x2019:
        cp = 0x27
    if 0x41 <= cp <= 0x5A:
        cp += 0x20
    elif 0xC0 <= cp <= 0xDE and cp != 0xD7:
        cp += 0x20
    return chr(cp)


def _is_word(cp: int) -> bool:
    return (
        0x61 <= cp <= 0x7A
        or 0x30 <= cp <= 0x39
        or cp == 0x27
        or (0xDF <= cp <= 0x24F and cp != 0xF7)
    )


def _is_cjk(cp: int) -> bool:
    return (
        0x3040 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
    )


def tokens_and_chunks(text: str):
    tokens, chunks = [], []
    word, cjk = [], []

    def end_word():
        if word:
            w = "".join(word).strip("'")
            word.clear()
            if w:
                tokens.append(w)
                chunks.append(w)

    def end_cjk():
        if cjk:
            chunks.append("".join(cjk))
            cjk.clear()

    for raw in text:
        c = _fold(raw)
        cp = ord(c)
        if _is_word(cp):
            end_cjk()
            word.append(c)
        elif _is_cjk(cp):
            end_word()
            cjk.append(c)
            tokens.append(c)
        else:
            end_word()
            end_cjk()
    end_word()
    end_cjk()
    return tokens, chunks


def feature_strings(text: str):
    tokens, chunks = tokens_and_chunks(text)
    out = ["w|" + t for t in tokens]
    out += ["b|" + a + "|" + b for a, b in zip(tokens, tokens[1:])]
    for ch in chunks:
        out += ["c|" + x for x in ch]
        bounded = "<" + ch + ">"
        for n in (2, 3):
            out += ["c|" + bounded[i : i + n] for i in range(len(bounded) - n + 1)]
    return out


def featurize(text: str):
    """Sorted [(bucket, count)] for `text`."""
    counts = {}
    for f in feature_strings(text):
        b = fnv1a32(f.encode("utf-8")) & (BUCKETS - 1)
        counts[b] = counts.get(b, 0) + 1
    return sorted(counts.items())
