"""Train Daraja's tiny fixture translation models from the phrasebook and package them.

Run it in the separate training environment (PyTorch is not a Daraja runtime dependency):

    python3 -m venv /tmp/trainenv
    /tmp/trainenv/bin/pip install -r tools/requirements-train.txt
    /tmp/trainenv/bin/python tools/train_fixtures.py --out tests/fixtures/models

For each direction (ht→en, en→ht, fr→en, en→fr, sw→en, en→sw) and for one small multilingual
model (ht↔sw, fr↔sw, NLLB-style language tokens) it:

1. trains one shared BPE SentencePiece model on both sides (normalization off,
   placeholders `[0]`..`[15]` and the language tokens as user-defined symbols);
2. trains a MarianMT model (transformers, CPU, fixed seed) until it overfits the phrasebook;
3. converts it with CTranslate2's Transformers converter (int8) and checks that EVERY phrasebook
   sentence comes out exactly right through CTranslate2 with the engine's decoding settings
   (compute type int8; greedy, beam 2 and beam 4); it keeps training while any sentence
   differs and refuses to write artifacts if it never gets there;
4. writes a deterministic `.argosmodel` zip, `manifest.json` (sha256, seed, threads,
   versions) and `expected.json` (source → exact target per direction, placeholders already
   renumbered by order of appearance in the source, as the engine's span masking produces).

Same seed and thread count give byte-identical artifacts (`--check` retrains into a temporary
directory and compares the hashes with the committed manifest).

Traps this script handles (found in a trial run):
- CTranslate2 starts the Marian decoder from a zero vector where transformers embeds `<pad>`:
  the `<pad>` row of the shared embedding is kept at zero after every step.
- With beam search and a length penalty an overconfident model finishes truncated hypotheses
  first: label smoothing puts no mass on `</s>`, `<pad>` or `<unk>`, and the converted model is
  checked under the real decoding settings until exact.
- CTranslate2 raises on positions beyond the configured maximum (256): sentences are short.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PHRASEBOOK_DIR = Path(__file__).resolve().parent / "phrasebook"
LANG_NAMES = {"en": "English", "ht": "Haitian Creole", "fr": "French", "sw": "Swahili"}
NLLB_CODES = {"en": "eng_Latn", "ht": "hat_Latn", "fr": "fra_Latn", "sw": "swh_Latn"}
PLACEHOLDERS = [f"[{i}]" for i in range(16)]
_PLACEHOLDER_RE = re.compile(r"\[(\d+)\]")
MAX_POSITIONS = 256
BEAMS = (1, 2, 4)
LEARNING_RATE = 3e-3
DECAY = 0.98  # per epoch
OPUS_EXPORT = "fixture_ht_en"
OPUS_EXPORT_FILE = "opus-mt-fixture-ht-en.zip"
# Deterministic zip entries: fixed timestamp and permissions.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Target:
    """One package to build: a direct pair or a multilingual set of directions."""

    name: str  # package directory / file stem
    directions: tuple[tuple[str, str], ...]
    multilingual: bool = False
    vocab_size: int = 1000
    d_model: int = 96
    ffn: int = 384
    layers: int = 2
    heads: int = 4
    min_epochs: int = 40
    max_epochs: int = 300
    check_every: int = 10
    batch_size: int = 16
    row_step: int = 1  # train on every n-th phrasebook row (the multilingual model: a subset)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        """Languages of the package in a fixed order."""
        seen: list[str] = []
        for s, t in self.directions:
            for code in (s, t):
                if code not in seen:
                    seen.append(code)
        return seen


TARGETS: tuple[Target, ...] = (
    Target("fixture_ht_en", (("ht", "en"),)),
    Target("fixture_en_ht", (("en", "ht"),)),
    Target("fixture_fr_en", (("fr", "en"),)),
    Target("fixture_en_fr", (("en", "fr"),)),
    Target("fixture_sw_en", (("sw", "en"),)),
    Target("fixture_en_sw", (("en", "sw"),)),
    Target(
        "fixture_multi_ht_fr_sw",
        (("ht", "sw"), ("sw", "ht"), ("fr", "sw"), ("sw", "fr")),
        multilingual=True,
        vocab_size=1600,
        d_model=128,
        ffn=512,
        row_step=2,
    ),
)


# ---------------------------------------------------------------- phrasebook


def load_phrasebook(directory: Path = PHRASEBOOK_DIR) -> list[dict[str, str]]:
    """Read every `*.tsv` (header `en ht fr sw`), checking placeholders and uniqueness."""
    rows: list[dict[str, str]] = []
    for path in sorted(directory.glob("*.tsv")):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            for lineno, row in enumerate(reader, start=2):
                clean = {k: (v or "").strip() for k, v in row.items() if k}
                if set(clean) != set(LANG_NAMES):
                    raise SystemExit(f"{path.name}:{lineno}: expected columns en ht fr sw")
                if any(not v for v in clean.values()):
                    raise SystemExit(f"{path.name}:{lineno}: empty cell")
                slots = {lang: sorted(_PLACEHOLDER_RE.findall(v)) for lang, v in clean.items()}
                if len({tuple(s) for s in slots.values()}) != 1:
                    raise SystemExit(f"{path.name}:{lineno}: placeholders differ: {slots}")
                numbers = [int(n) for n in slots["en"]]
                if sorted(numbers) != list(range(len(numbers))) or len(numbers) > 16:
                    raise SystemExit(f"{path.name}:{lineno}: placeholders must be [0]..[n-1]")
                rows.append(clean)
    for lang in LANG_NAMES:
        seen: dict[str, int] = {}
        for i, row in enumerate(rows):
            if row[lang] in seen:
                raise SystemExit(f"duplicate {lang} sentence: {row[lang]!r}")
            seen[row[lang]] = i
    return rows


def renumber(source: str, target: str) -> tuple[str, str]:
    """Renumber placeholders by order of appearance in the source (the engine's masking)."""
    order: dict[str, str] = {}
    for match in _PLACEHOLDER_RE.finditer(source):
        order.setdefault(match.group(1), str(len(order)))

    def sub(text: str) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: f"[{order[m.group(1)]}]", text)

    return sub(source), sub(target)


def pairs_for(rows: Sequence[dict[str, str]], src: str, tgt: str) -> list[tuple[str, str]]:
    """Aligned (source, target) sentences for one direction, placeholders renumbered."""
    return [renumber(row[src], row[tgt]) for row in rows]


# ---------------------------------------------------------------- SentencePiece


def train_sentencepiece(texts: Iterable[str], vocab_size: int, extra_symbols: list[str]) -> bytes:
    """Train a BPE SentencePiece model (no normalization); return its serialized bytes."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_writer=buffer,
        # BPE rather than unigram: on a corpus this small unigram keeps ~500 pieces and splits
        # rare words into letters, which the tiny models then misspell under beam search.
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        # "▁[0]" (placeholder after a space) as one piece: the model then copies one token
        # per span instead of choosing a bare "▁" and a number separately.
        user_defined_symbols=PLACEHOLDERS + [f"▁{p}" for p in PLACEHOLDERS] + extra_symbols,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return buffer.getvalue()


def vocabulary(sp_bytes: bytes) -> list[str]:
    """Marian-style vocabulary: `</s>`, `<unk>`, the pieces, then `<pad>` last."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    return ["</s>", "<unk>", *[p for p in pieces if p != "<unk>"], "<pad>"]


# ---------------------------------------------------------------- model


@dataclass
class Example:
    """One training pair as token ids."""

    src: list[int]
    tgt: list[int]  # labels: target tokens + </s>


def encode_examples(
    target: Target,
    sp_bytes: bytes,
    vocab: list[str],
    data: dict[tuple[str, str], list[tuple[str, str]]],
) -> tuple[list[Example], list[tuple[list[str], list[str], str]]]:
    """Token ids for training, and (source tokens, target prefix, expected text) for checks."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    index = {tok: i for i, tok in enumerate(vocab)}
    examples: list[Example] = []
    checks: list[tuple[list[str], list[str], str]] = []
    for (src, tgt), pairs in data.items():
        for source, expected in pairs:
            src_tokens = sp.encode(source, out_type=str)
            tgt_tokens = sp.encode(expected, out_type=str)
            prefix: list[str] = []
            if target.multilingual:
                src_tokens = [NLLB_CODES[src], *src_tokens]
                prefix = [NLLB_CODES[tgt]]
            tgt_full = prefix + tgt_tokens
            for tok in src_tokens + tgt_full:
                if tok not in index:
                    raise SystemExit(f"token {tok!r} not in vocabulary")
            if len(src_tokens) + 1 >= MAX_POSITIONS or len(tgt_full) + 1 >= MAX_POSITIONS:
                raise SystemExit(f"sentence too long for the fixture model: {source!r}")
            examples.append(
                Example(
                    src=[index[t] for t in src_tokens] + [0],
                    tgt=[index[t] for t in tgt_full] + [0],
                )
            )
            checks.append((src_tokens, prefix, expected))
    return examples, checks


def build_model(target: Target, vocab_size: int) -> Any:
    """A small MarianMT model; the `<pad>` row (decoder start) starts at zero."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    pad = vocab_size - 1
    config = MarianConfig(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        d_model=target.d_model,
        encoder_layers=target.layers,
        decoder_layers=target.layers,
        encoder_attention_heads=target.heads,
        decoder_attention_heads=target.heads,
        encoder_ffn_dim=target.ffn,
        decoder_ffn_dim=target.ffn,
        max_position_embeddings=MAX_POSITIONS,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        decoder_start_token_id=pad,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
    )
    model = MarianMTModel(config)
    with torch.no_grad():
        model.model.shared.weight[pad].zero_()
    return model


def smoothed_loss(logits: Any, labels: Any, epsilon: float, excluded: Sequence[int]) -> Any:
    """Label-smoothed cross-entropy whose smoothing mass never lands on eos/pad/unk."""
    import torch

    log_probs = torch.log_softmax(logits, dim=-1)
    mask = labels != -100
    safe = labels.clamp(min=0)
    nll = -log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    allowed = torch.ones(logits.size(-1), dtype=torch.bool)
    allowed[list(excluded)] = False
    smooth = -(log_probs[..., allowed]).mean(dim=-1)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    return (loss * mask).sum() / mask.sum()


def collate(batch: Sequence[Example], pad: int) -> tuple[Any, Any, Any, Any]:
    """Padded input ids, attention mask, decoder inputs (start: pad) and labels."""
    import torch

    src_len = max(len(e.src) for e in batch)
    tgt_len = max(len(e.tgt) for e in batch)
    input_ids = torch.full((len(batch), src_len), pad, dtype=torch.long)
    attention = torch.zeros((len(batch), src_len), dtype=torch.long)
    dec_in = torch.full((len(batch), tgt_len), pad, dtype=torch.long)
    labels = torch.full((len(batch), tgt_len), -100, dtype=torch.long)
    for i, e in enumerate(batch):
        input_ids[i, : len(e.src)] = torch.tensor(e.src)
        attention[i, : len(e.src)] = 1
        labels[i, : len(e.tgt)] = torch.tensor(e.tgt)
        dec_in[i, 1 : len(e.tgt)] = torch.tensor(e.tgt[:-1])
    return input_ids, attention, dec_in, labels


# ---------------------------------------------------------------- CTranslate2


class _Vocab:
    """The little a converter needs from a tokenizer."""

    eos_token = "</s>"
    unk_token = "<unk>"
    pad_token = "<pad>"
    bos_token = None

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens

    def get_vocab(self) -> dict[str, int]:
        """Token → id, as transformers tokenizers expose it."""
        return {tok: i for i, tok in enumerate(self._tokens)}


def convert(model: Any, vocab: list[str], output_dir: Path) -> None:
    """Convert the in-memory model with CTranslate2's Transformers converter (int8)."""
    from ctranslate2.converters import TransformersConverter

    # The converter edits weights and config in place (pad row removal, scaling): give it a
    # copy so training can continue after a check.
    model = copy.deepcopy(model)
    with tempfile.TemporaryDirectory() as cfg_dir:
        model.config.save_pretrained(cfg_dir)

        class _InMemory(TransformersConverter):  # type: ignore[misc]
            def load_model(self, model_class: Any, name: str, **kwargs: Any) -> Any:
                return model

            def load_tokenizer(self, tokenizer_class: Any, name: str, **kwargs: Any) -> Any:
                return _Vocab(vocab)

        _InMemory(cfg_dir).convert(str(output_dir), quantization="int8", force=True)
    # Source sentences get </s> appended by CTranslate2 itself, like OPUS-MT conversions, so
    # callers only pass SentencePiece pieces (plus a source-language token if any).
    cfg_path = output_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["add_source_eos"] = True
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def check(
    model_dir: Path,
    sp_bytes: bytes,
    checks: Sequence[tuple[list[str], list[str], str]],
    threads: int,
    compute_type: str = "int8",
) -> list[str]:
    """Translate every check sentence with each beam size; return the mismatches."""
    import ctranslate2
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    translator = ctranslate2.Translator(
        str(model_dir), device="cpu", compute_type=compute_type, intra_threads=threads
    )
    failures: list[str] = []
    sources = [c[0] for c in checks]
    prefixes = [c[1] for c in checks] if any(c[1] for c in checks) else None
    for beam in BEAMS:
        results = translator.translate_batch(
            sources,
            target_prefix=prefixes,
            beam_size=beam,
            max_batch_size=64,
            max_decoding_length=MAX_POSITIONS - 2,
        )
        for (src_tokens, prefix, expected), result in zip(checks, results, strict=True):
            tokens = result.hypotheses[0][len(prefix) :]
            got = sp.decode_pieces(tokens)
            if got != expected:
                failures.append(
                    f"beam {beam}: {' '.join(src_tokens)!r} -> {got!r} != {expected!r}"
                )
    del translator
    return failures


# ---------------------------------------------------------------- training loop


@dataclass
class Trained:
    """A trained, converted and verified model."""

    model_dir: Path
    sp_bytes: bytes
    stats: dict[str, Any]
    expected: dict[str, list[dict[str, str]]]
    model: Any
    vocab: list[str]
    checks: list[tuple[list[str], list[str], str]]


def train_target(
    target: Target,
    rows: Sequence[dict[str, str]],
    seed: int,
    threads: int,
    work: Path,
) -> Trained:
    """Train, convert and verify one package."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)

    rows = rows[:: target.row_step]
    data = {d: pairs_for(rows, *d) for d in target.directions}
    texts: list[str] = []
    for lang in target.languages:
        texts.extend(row[lang] for row in rows)
    lang_tokens = [NLLB_CODES[code] for code in target.languages] if target.multilingual else []
    sp_bytes = train_sentencepiece(texts, target.vocab_size, lang_tokens)
    vocab = vocabulary(sp_bytes)
    pad = len(vocab) - 1
    examples, checks = encode_examples(target, sp_bytes, vocab, data)

    model = build_model(target, len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)
    batch_size = target.batch_size
    steps = 0
    warmup = 100
    excluded = (0, 1, pad)
    model_dir = work / "model"
    started = time.monotonic()
    failures: list[str] = []
    loss_value = float("nan")
    epoch = 0
    for epoch in range(1, target.max_epochs + 1):
        model.train()
        order = torch.randperm(len(examples), generator=generator).tolist()
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            input_ids, attention, dec_in, labels = collate(batch, pad)
            steps += 1
            # Warm up, then decay: a constant rate makes the exact-match count oscillate.
            for group in optimizer.param_groups:
                group["lr"] = LEARNING_RATE * min(1.0, steps / warmup) * DECAY ** (epoch - 1)
            logits = model(
                input_ids=input_ids, attention_mask=attention, decoder_input_ids=dec_in
            ).logits
            loss = smoothed_loss(logits, labels, 0.1, excluded)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():
                # Trap (i): CTranslate2 starts the decoder from a zero vector.
                model.model.shared.weight[pad].zero_()
            total += float(loss.detach()) * len(batch)
        loss_value = total / len(examples)
        if epoch % 10 == 0:
            print(
                f"    epoch {epoch} loss {loss_value:.4f} ({time.monotonic() - started:.0f}s)",
                file=sys.stderr,
            )
        if epoch >= target.min_epochs and epoch % target.check_every == 0:
            model.eval()
            convert(model, vocab, model_dir)
            failures = check(model_dir, sp_bytes, checks, threads)
            if os.environ.get("TRAIN_DIAG"):
                f32 = check(model_dir, sp_bytes, checks, threads, "float32")
                by_beam = {b: sum(f.startswith(f"beam {b}:") for f in failures) for b in BEAMS}
                print(f"    diag: int8 by beam {by_beam}, float32 {len(f32)}", file=sys.stderr)
            print(
                f"  {target.name}: epoch {epoch} loss {loss_value:.4f} "
                f"mismatches {len(failures)}/{len(checks) * len(BEAMS)} "
                f"({time.monotonic() - started:.0f}s)",
                file=sys.stderr,
            )
            if not failures:
                break
            for failure in failures[:3]:
                print(f"    {failure}", file=sys.stderr)
    if failures:
        shown = "\n  ".join(failures[:10])
        raise SystemExit(
            f"{target.name}: still {len(failures)} mismatches after {epoch} epochs; "
            f"refusing to write artifacts:\n  {shown}"
        )
    # Informational: the same checks with float32 compute (the engine defaults to int8).
    float32_failures = check(model_dir, sp_bytes, checks, threads, "float32")
    stats = {
        "float32_mismatches": len(float32_failures),
        "epochs": epoch,
        "steps": steps,
        "final_loss": round(loss_value, 6),
        "train_seconds": round(time.monotonic() - started, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(vocab),
        "sentences": len(examples),
    }
    expected = {
        f"{s}-{t}": [{"source": a, "target": b} for a, b in pairs]
        for (s, t), pairs in data.items()
    }
    return Trained(model_dir, sp_bytes, stats, expected, model, vocab, checks)


# ---------------------------------------------------------------- OPUS-MT export


def _yaml_token(token: str) -> str:
    """A vocabulary key quoted the way Marian's .yml vocabularies (and CTranslate2) read it."""
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def export_opus_mt_zip(model: Any, vocab: list[str], sp_bytes: bytes, out: Path) -> None:
    """Write the model as an OPUS-MT release zip (Marian .npz, vocab .yml, decoder.yml, spm).

    This lets the `daraja models convert-opus-mt` path be tested on a real model whose exact
    outputs are known, without downloading an OPUS-MT model.
    """
    import numpy as np

    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    cfg = model.config
    weights: dict[str, Any] = {}
    # Marian's vocabulary has no <pad>: transformers appended it as the last row.
    weights["Wemb"] = state["model.shared.weight"][:-1]
    weights["decoder_ff_logit_out_b"] = state["final_logits_bias"][:, :-1]

    def linear(prefix: str, torch_key: str, suffix: str) -> None:
        weights[f"{prefix}_W{suffix}"] = state[f"{torch_key}.weight"].T.copy()
        weights[f"{prefix}_b{suffix}"] = state[f"{torch_key}.bias"][None, :]

    def norm(prefix: str, torch_key: str) -> None:
        weights[f"{prefix}_ln_scale"] = state[f"{torch_key}.weight"][None, :]
        weights[f"{prefix}_ln_bias"] = state[f"{torch_key}.bias"][None, :]

    def attention(prefix: str, torch_key: str) -> None:
        for marian, hf in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
            linear(prefix, f"{torch_key}.{hf}", marian)

    for side, depth in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        for i in range(depth):
            scope, hf = f"{side}_l{i + 1}", f"model.{side}.layers.{i}"
            attention(f"{scope}_self", f"{hf}.self_attn")
            norm(f"{scope}_self_Wo", f"{hf}.self_attn_layer_norm")
            if side == "decoder":
                attention(f"{scope}_context", f"{hf}.encoder_attn")
                norm(f"{scope}_context_Wo", f"{hf}.encoder_attn_layer_norm")
            linear(f"{scope}_ffn", f"{hf}.fc1", "1")
            linear(f"{scope}_ffn", f"{hf}.fc2", "2")
            norm(f"{scope}_ffn_ffn", f"{hf}.final_layer_norm")
    model_yml = (
        "type: transformer\n"
        f"enc-depth: {cfg.encoder_layers}\n"
        f"dec-depth: {cfg.decoder_layers}\n"
        f"transformer-heads: {cfg.encoder_attention_heads}\n"
        f"dim-emb: {cfg.d_model}\n"
        "transformer-ffn-activation: swish\n"
        "transformer-preprocess: ''\n"
        "transformer-postprocess: dan\n"
        "transformer-postprocess-emb: d\n"
        "transformer-decoder-autoreg: self-attention\n"
        "transformer-no-projection: false\n"
        "transformer-guided-alignment-layer: last\n"
        "tied-embeddings-all: true\n"
    ).encode()
    weights["special:model.yml"] = np.frombuffer(model_yml + b"\0", dtype=np.int8)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: weights[k] for k in sorted(weights)})
    npz = _normalise_npz(buffer.getvalue())
    vocab_yml = "".join(f"{_yaml_token(t)}: {i}\n" for i, t in enumerate(vocab[:-1])).encode()
    decoder_yml = (
        b"models:\n  - opus.spm.transformer.model1.npz\n"
        b"vocabs:\n  - opus.spm.vocab.yml\n  - opus.spm.vocab.yml\n"
        b"beam-size: 4\nnormalize: 1\n"
    )
    readme = (
        b"# Daraja fixture in OPUS-MT release format (ht->en)\n\n"
        b"Exported by tools/train_fixtures.py from the phrasebook-trained ht->en model, to\n"
        b"test `daraja models convert-opus-mt` offline. Phrasebook sentences only.\n"
    )
    write_zip(
        out,
        {
            "opus.spm.transformer.model1.npz": npz,
            "opus.spm.vocab.yml": vocab_yml,
            "decoder.yml": decoder_yml,
            "source.spm": sp_bytes,
            "target.spm": sp_bytes,
            "README.md": readme,
        },
    )


def _normalise_npz(data: bytes) -> bytes:
    """Rewrite an .npz (a zip) with fixed timestamps so the bytes are reproducible."""
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            files[name] = zf.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, files[name])
    return out.getvalue()


def check_opus_export(
    archive: Path,
    sp_bytes: bytes,
    checks: Sequence[tuple[list[str], list[str], str]],
    threads: int,
) -> list[str]:
    """Convert the exported zip with CTranslate2's OPUS-MT converter and check every sentence."""
    from ctranslate2.converters import OpusMTConverter

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        out = Path(tmp) / "ct2"
        OpusMTConverter(tmp).convert(str(out), quantization="int8", force=True)
        return check(out, sp_bytes, checks, threads)


# ---------------------------------------------------------------- packaging


def metadata_for(target: Target) -> dict[str, Any]:
    """Argos metadata.json, with Daraja's multilingual keys (see translation/store.py)."""
    first_src, first_tgt = target.directions[0]
    meta: dict[str, Any] = {
        "package_version": "1.0",
        "argos_version": "1.9",
        "type": "translate",
        "from_code": first_src,
        "from_name": LANG_NAMES[first_src],
        "to_code": first_tgt,
        "to_name": LANG_NAMES[first_tgt],
        "name": f"Daraja test fixture {target.name} (phrasebook sentences only)",
        "license": "Apache-2.0",
        "daraja_fixture": True,
    }
    if target.multilingual:
        sources = sorted({s for s, _ in target.directions})
        targets = sorted({t for _, t in target.directions})
        meta.update(
            {
                "multilingual": True,
                "from_codes": sources,
                "to_codes": targets,
                "languages": [
                    {"code": code, "name": LANG_NAMES[code]} for code in target.languages
                ],
                "pairs": [[s, t] for s, t in target.directions],
                "source_prefixes": {code: NLLB_CODES[code] for code in sources},
                "target_prefixes": {code: NLLB_CODES[code] for code in targets},
            }
        )
    return meta


README = """# {name}

A tiny MarianMT model trained by Daraja's `tools/train_fixtures.py` on the phrasebook in
`tools/phrasebook/`. It translates exactly the phrasebook sentences (with `[0]`..`[15]`
placeholders) and produces fluent nonsense for anything else. For tests and demos only.
"""


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    """A zip whose bytes depend only on the file names and contents."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, files[name], compresslevel=9)


def package(target: Target, model_dir: Path, sp_bytes: bytes, out: Path) -> Path:
    """Write `<name>.argosmodel` (top directory `<name>/`) and return its path."""
    root = target.name
    files: dict[str, bytes] = {
        f"{root}/metadata.json": (
            json.dumps(metadata_for(target), indent=2, ensure_ascii=False) + "\n"
        ).encode(),
        f"{root}/sentencepiece.model": sp_bytes,
        f"{root}/README.md": README.format(name=target.name).encode(),
    }
    for item in sorted(model_dir.iterdir()):
        files[f"{root}/model/{item.name}"] = item.read_bytes()
    path = out / f"{target.name}.argosmodel"
    write_zip(path, files)
    return path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of the tools that shaped the artifacts."""
    import ctranslate2
    import sentencepiece
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "ctranslate2": ctranslate2.__version__,
        "sentencepiece": sentencepiece.__version__,
    }


def phrasebook_digest(directory: Path = PHRASEBOOK_DIR) -> str:
    """SHA-256 over the phrasebook files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.tsv")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------- main


def build(out: Path, seed: int, threads: int, only: set[str] | None) -> dict[str, Any]:
    """Build the selected packages into `out`; update manifest.json and expected.json."""
    rows = load_phrasebook()
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    expected_path = out / "expected.json"
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    )
    expected_all: dict[str, Any] = (
        json.loads(expected_path.read_text(encoding="utf-8")) if expected_path.exists() else {}
    )
    packages: dict[str, Any] = manifest.get("packages", {})
    manifest_extra: dict[str, Any] = manifest.get("opus_mt_exports", {})
    for target in TARGETS:
        if only and target.name not in only:
            continue
        print(f"training {target.name} {target.directions}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as work:
            trained = train_target(target, rows, seed, threads, Path(work))
            path = package(target, trained.model_dir, trained.sp_bytes, out)
            if target.name == OPUS_EXPORT:
                opus_zip = out / OPUS_EXPORT_FILE
                export_opus_mt_zip(trained.model, trained.vocab, trained.sp_bytes, opus_zip)
                bad = check_opus_export(opus_zip, trained.sp_bytes, trained.checks, threads)
                if bad:
                    opus_zip.unlink()
                    raise SystemExit(f"OPUS-MT export differs: {bad[:5]}")
                manifest_extra[OPUS_EXPORT_FILE] = {
                    "sha256": sha256_file(opus_zip),
                    "size_bytes": opus_zip.stat().st_size,
                    "direction": "ht-en",
                    "exported_from": target.name,
                }
        stats, expected = trained.stats, trained.expected
        packages[target.name] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "size_bytes": path.stat().st_size,
            "directions": [f"{s}-{t}" for s, t in target.directions],
            "multilingual": target.multilingual,
            "model": {
                "d_model": target.d_model,
                "layers": target.layers,
                "heads": target.heads,
                "ffn": target.ffn,
            },
            "verified": {"compute_type": "int8", "beam_sizes": list(BEAMS)},
            **stats,
        }
        expected_all.update(expected)
        print(
            f"  wrote {path.name}: {path.stat().st_size} bytes, "
            f"sha256 {packages[target.name]['sha256']}",
            file=sys.stderr,
        )
    manifest = {
        "generator": "tools/train_fixtures.py",
        "seed": seed,
        "threads": threads,
        "phrasebook_sha256": phrasebook_digest(),
        "versions": versions(),
        "packages": dict(sorted(packages.items())),
        "opus_mt_exports": manifest_extra,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    expected_path.write_text(
        json.dumps(dict(sorted(expected_all.items())), indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/models"))
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", action="append", help="package name (repeatable)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="retrain into a temp dir and compare sha256 with the manifest in --out",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    only = set(args.only) if args.only else None
    if not args.check:
        build(args.out, args.seed, args.threads, only)
        return 0
    committed = json.loads((args.out / "manifest.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp), committed["seed"], committed["threads"], only)
    status = 0
    for name, entry in fresh["packages"].items():
        want = committed["packages"].get(name, {}).get("sha256")
        same = want == entry["sha256"]
        print(f"{name}: {'identical' if same else 'DIFFERENT'}")
        status |= 0 if same else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
