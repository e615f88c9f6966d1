"""`daraja bench translate`: engine throughput against raw CTranslate2, on a realistic model.

The model is built in a temporary directory with CTranslate2's model specs (Transformer base:
6+6 layers, d_model 512, 8 heads, FFN 2048, 32k shared vocabulary; random weights, no
PyTorch) next to a small SentencePiece model trained on generated sentences; the vocabulary is
the SentencePiece pieces padded with filler tokens to full size. Decoding length is pinned
(`min_decoding_length == max_decoding_length`) so every path does identical work. One run
measures:
  (a) raw `Translator.translate_batch` on pre-tokenized segments, best batch size (the limit);
  (b) the engine with N concurrent single-sentence messages (cache off);
  (c) the same N messages one at a time on the raw translator (a per-message translator),
and the engine one message at a time for reference; and
  (d) the engine with quality estimation (the same model, loaded a second time, serves the
      reverse direction for the round trip), against (b): the cost of QE; and
  (e) at every batch size (1 and the sizes of (a)), the raw translator on batches of that size
      against the engine given the same messages that many at a time, wave by wave (each wave
      on both sides back to back; each side's quickest run of each wave counts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]

_WORDS = [
    "unit",
    "patrol",
    "road",
    "north",
    "south",
    "east",
    "west",
    "checkpoint",
    "vehicle",
    "team",
    "officer",
    "report",
    "arrived",
    "moving",
    "blocked",
    "open",
    "closed",
    "water",
    "fuel",
    "food",
    "medical",
    "need",
    "send",
    "more",
    "men",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "grid",
    "sector",
    "bridge",
    "market",
    "school",
    "church",
    "station",
    "hospital",
    "river",
    "morning",
    "evening",
    "night",
    "tomorrow",
    "today",
    "quickly",
    "slowly",
    "carefully",
    "under",
    "fire",
    "secure",
    "clear",
    "wounded",
    "civilians",
    "crowd",
    "barricade",
    "tires",
    "smoke",
    "gunfire",
    "heard",
    "seen",
    "near",
    "far",
    "inside",
    "outside",
    "with",
    "without",
    "before",
    "after",
    "around",
    "behind",
    "ahead",
    "left",
    "right",
    "stop",
    "wait",
    "hold",
    "advance",
    "return",
]


_SYLLABLES = [c + v for c in "bdfghklmnprstvwyzjcx" for v in "aeiou"]


def _filler(i: int) -> str:
    """A distinct letter-only vocabulary token for index i ('zz' never occurs in the corpus)."""
    word = ""
    while True:
        word = _SYLLABLES[i % 100] + word
        i //= 100
        if i == 0:
            return "\u2581zz" + word


@dataclass(frozen=True)
class ModelShape:
    """Transformer dimensions of the benchmark model."""

    layers: int = 6
    d_model: int = 512
    heads: int = 8
    ffn: int = 2048
    vocab: int = 32_000
    sp_vocab: int = 1000


BASE = ModelShape()
QUICK = ModelShape(layers=2, d_model=64, heads=4, ffn=256, vocab=2000, sp_vocab=250)


def sentences(count: int, seed: int) -> list[str]:
    """Distinct generated operational-sounding sentences of 10-14 words."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(10, 14))]
        text = " ".join(words).capitalize() + "."
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def train_sentencepiece(path: Path, vocab_size: int, seed: int = 0) -> None:
    """Train a small unigram SentencePiece model on generated sentences."""
    import sentencepiece

    corpus = sentences(3000, seed)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def build_random_model(
    out_dir: Path, shape: ModelShape, *, seed: int = 0, quantization: str = "int8"
) -> tuple[Path, Path]:
    """Write a random-weight CTranslate2 Transformer and its SentencePiece model."""
    import numpy as np
    import sentencepiece
    from ctranslate2.specs import transformer_spec

    out_dir.mkdir(parents=True, exist_ok=True)
    sp_path = out_dir / "sentencepiece.model"
    train_sentencepiece(sp_path, shape.sp_vocab, seed)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    # Filler tokens are pronounceable letter-only words ("▁zzkamo"), never emitted (see the
    # output bias below).
    vocab = pieces + [_filler(i) for i in range(shape.vocab - len(pieces))]

    rng = np.random.default_rng(seed)
    d, ffn = shape.d_model, shape.ffn

    def linear(spec: Any, out_dim: int, in_dim: int) -> None:
        spec.weight = (rng.standard_normal((out_dim, in_dim), dtype=np.float32)) / np.sqrt(in_dim)
        spec.bias = np.zeros((out_dim,), np.float32)

    def norm(spec: Any) -> None:
        spec.gamma = np.ones((d,), np.float32)
        spec.beta = np.zeros((d,), np.float32)

    spec = transformer_spec.TransformerSpec.from_config(
        (shape.layers, shape.layers), shape.heads, pre_norm=False
    )

    def embeddings() -> Any:
        return rng.standard_normal((len(vocab), d), dtype=np.float32) * 0.1

    positions = np.zeros((512, d), np.float32)
    for part in (spec.encoder, spec.decoder):
        emb = part.embeddings[0] if isinstance(part.embeddings, list) else part.embeddings
        # Untied encoder, decoder and output matrices: the ~91 MB int8 size of the issue.
        emb.weight = embeddings()
        part.position_encodings.encodings = positions
        for layer in part.layer:
            norm(layer.ffn.layer_norm)
            linear(layer.ffn.linear_0, ffn, d)
            linear(layer.ffn.linear_1, d, ffn)
            att = layer.self_attention
            linear(att.linear[0], 3 * d, d)
            linear(att.linear[1], d, d)
            norm(att.layer_norm)
            cross = getattr(layer, "attention", None)
            if cross is not None:
                linear(cross.linear[0], d, d)
                linear(cross.linear[1], 2 * d, d)
                linear(cross.linear[2], d, d)
                norm(cross.layer_norm)
    spec.decoder.projection.weight = embeddings()
    # The filler tokens fill the vocabulary (and the output layer) to full size but are never
    # chosen: outputs are made of real SentencePiece pieces, so a back-translation (quality
    # estimation) re-reads them as about as many tokens as a real output would give.
    bias = np.zeros((len(vocab),), np.float32)
    bias[len(pieces) :] = -1e4
    spec.decoder.projection.bias = bias
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.config.add_source_eos = True
    spec.validate()
    spec.optimize(quantization=quantization)
    model_dir = out_dir / "model"
    model_dir.mkdir(exist_ok=True)
    spec.save(str(model_dir))
    return model_dir, sp_path


@dataclass(frozen=True)
class _BenchPackage:
    """The benchmark model dressed as an installed en->fr package."""

    model_dir: Path
    sp_model: Path
    package_id: str = "bench_en_fr"
    from_codes: tuple[str, ...] = ("en",)
    to_codes: tuple[str, ...] = ("fr",)
    multilingual: bool = False
    target_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    source_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    sha256: str = ""

    def serves(self, src: str, tgt: str) -> bool:
        """Its one direction."""
        return (src, tgt) == (self.from_codes[0], self.to_codes[0])


class _BenchStore:
    def __init__(self, *pkgs: _BenchPackage) -> None:
        self.pkgs = list(pkgs)

    def list(self) -> list[_BenchPackage]:
        return list(self.pkgs)

    def verify(self, pkg: Any) -> None:
        return None  # built seconds ago in a private temp dir


def import_time_ms() -> float:
    """Milliseconds `import translation` takes in a fresh interpreter."""
    code = "import time; t=time.perf_counter(); import translation; print(time.perf_counter()-t)"
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip()) * 1000


def _rss_mb() -> tuple[float, float]:
    current = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current, peak


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def run(
    *,
    quick: bool = False,
    threads: int = 2,
    beam_size: int = 1,
    messages: int = 64,
    decoding_length: int = 32,
    compute_type: str = "int8",
    batch_sizes: Sequence[int] = (8, 16, 32, 64),
    repeats: int = 2,
    progress: Progress | None = None,
    text_tools: Any = None,
) -> dict[str, Any]:
    """Build the model, measure (a) raw, (b) engine concurrent, (c) one at a time."""
    say = progress or (lambda _msg: None)
    shape = QUICK if quick else BASE
    say("measuring import time of `translation`")
    import_ms = import_time_ms()
    import ctranslate2
    import sentencepiece

    from translation.engine import Engine, EngineConfig

    with tempfile.TemporaryDirectory(prefix="daraja-bench-") as tmp:
        say(
            f"building a random {shape.layers}+{shape.layers}-layer d{shape.d_model} model "
            f"(vocab {shape.vocab}, {compute_type})"
        )
        t0 = time.perf_counter()
        model_dir, sp_path = build_random_model(Path(tmp), shape, quantization=compute_type)
        build_s = time.perf_counter() - t0
        model_mb = _dir_mb(model_dir)
        sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
        # Distinct sets: warm-up, one per repeat, one-at-a-time runs (cache is off anyway).
        pool = sentences(messages * (repeats + 3), seed=1)
        sets = [pool[i * messages : (i + 1) * messages] for i in range(repeats + 3)]
        common: dict[str, Any] = {
            "beam_size": beam_size,
            "max_decoding_length": decoding_length,
            "min_decoding_length": decoding_length,
            "return_scores": True,
        }
        translator = ctranslate2.Translator(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            intra_threads=threads,
            inter_threads=1,
        )

        def raw_pass(texts: list[str], bs: int) -> float:
            tokens = [sp.encode(t, out_type=str) for t in texts]  # pre-tokenized: not timed
            t0 = time.perf_counter()
            for i in range(0, len(tokens), bs):
                translator.translate_batch(tokens[i : i + bs], **common)
            return len(tokens) / (time.perf_counter() - t0)

        raw_pass(sets[0][:8], 8)  # warm-up
        rates = {bs: raw_pass(sets[0], bs) for bs in batch_sizes if bs <= messages}
        raw_bs = max(rates, key=rates.__getitem__) if rates else messages
        say("(a) batch sizes: " + ", ".join(f"{b}: {r:.1f}" for b, r in rates.items()))

        config = EngineConfig(
            threads=threads,
            inter_threads=1,
            compute_type=compute_type,
            # As large as the largest raw batch it is compared with in (e): a smaller limit
            # would split those waves into several model calls the raw side does not make.
            batch_size=max(rates, default=max(raw_bs, 1)),
            beam_size=beam_size,
            cache_size=0,
            min_decoding_length=decoding_length,
            max_decoding_length=decoding_length,
            verify_checksums=False,
            quality_estimation=False,
        )
        pkg = _BenchPackage(model_dir=model_dir, sp_model=sp_path)
        reverse = _BenchPackage(
            model_dir=model_dir,
            sp_model=sp_path,
            package_id="bench_fr_en",
            from_codes=("fr",),
            to_codes=("en",),
        )
        engine = Engine(_BenchStore(pkg), config, text_tools=text_tools)
        qe_engine = Engine(
            _BenchStore(pkg, reverse),
            dataclasses.replace(config, quality_estimation=True),
            text_tools=text_tools,
        )

        async def burst(eng: Any, texts: Sequence[str]) -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*(eng.translate(t, "fr", source="en") for t in texts))
            return len(texts) / (time.perf_counter() - t0)

        by_batch: dict[int, tuple[float, float]] = {}

        async def paired_waves(texts: Sequence[str], bs: int) -> tuple[float, float]:
            """Raw and engine rates on the same waves of `bs` messages. Each wave runs on both
            sides back to back, in alternating order, so the load other processes put on the
            machine at that moment weighs on both alike; each side's quickest run of each wave
            over the repeats counts (whole passes of several waves, compared best against
            best, rarely catch both sides undisturbed on a shared machine)."""
            waves = [list(texts[i : i + bs]) for i in range(0, len(texts), bs)]
            tokens = [[sp.encode(t, out_type=str) for t in wave] for wave in waves]  # not timed
            raw_s = [float("inf")] * len(waves)
            engine_s = [float("inf")] * len(waves)
            for r in range(repeats):
                for i, wave in enumerate(waves):
                    for raw_side in (True, False) if (r + i) % 2 == 0 else (False, True):
                        t0 = time.perf_counter()
                        if raw_side:
                            translator.translate_batch(tokens[i], **common)
                            raw_s[i] = min(raw_s[i], time.perf_counter() - t0)
                        else:
                            await asyncio.gather(
                                *(engine.translate(t, "fr", source="en") for t in wave)
                            )
                            engine_s[i] = min(engine_s[i], time.perf_counter() - t0)
            return len(texts) / sum(raw_s), len(texts) / sum(engine_s)

        async def measure() -> tuple[float, float, float, float, int, float]:
            # (a), (b) and (d) alternate so a busy machine slows all alike; the best run counts.
            try:
                await burst(engine, sets[0])
                await burst(qe_engine, sets[0])
                raw_best = engine_best = qe_best = 0.0
                for r in range(repeats):
                    texts = sets[1 + r]
                    raw_best = max(raw_best, raw_pass(texts, raw_bs))
                    engine_best = max(engine_best, await burst(engine, texts))
                    qe_best = max(qe_best, await burst(qe_engine, texts))
                    say(
                        f"run {r + 1}/{repeats}: (a) raw batch {raw_bs} {raw_best:.1f} msg/s, "
                        f"(b) engine {messages} concurrent {engine_best:.1f} msg/s, "
                        f"(d) with QE {qe_best:.1f} msg/s (best so far)"
                    )
                # (c) one at a time: tokenize, translate, detokenize, like a per-message loop.
                t0 = time.perf_counter()
                for text in sets[repeats + 1]:
                    out = translator.translate_batch([sp.encode(text, out_type=str)], **common)
                    sp.decode_pieces(out[0].hypotheses[0])
                seq = messages / (time.perf_counter() - t0)
                say(f"(c) one at a time: {seq:.1f} msg/s")
                one = sets[repeats + 2][: min(16, messages)]
                t0 = time.perf_counter()
                for t in one:
                    await engine.translate(t, "fr", source="en")
                engine_seq = len(one) / (time.perf_counter() - t0)
                say(f"    engine one at a time ({len(one)} messages): {engine_seq:.1f} msg/s")
                calls = engine.stats().model_calls
                # (e) at every batch size: the raw translator on batches of `bs` against the
                # engine given the same messages `bs` at a time (one wave of `bs` concurrent
                # messages after another), so each compares like with like.
                for bs in sorted({1, *rates}):
                    # Several waves where the set allows (one short wave is mostly noise).
                    texts = sets[repeats + 2][: min(messages, max(4 * bs, 16))]
                    raw_bs_rate, engine_bs_rate = await paired_waves(texts, bs)
                    by_batch[bs] = (raw_bs_rate, engine_bs_rate)
                    say(
                        f"(e) batch {bs}: raw {raw_bs_rate:.1f} msg/s, engine "
                        f"{engine_bs_rate:.1f} msg/s ({engine_bs_rate / raw_bs_rate:.2f})"
                    )
                return raw_best, engine_best, seq, engine_seq, calls, qe_best
            finally:
                await engine.close()
                await qe_engine.close()

        raw_best, engine_best, seq_best, engine_seq, calls, qe_best = asyncio.run(measure())
    rss, peak = _rss_mb()
    return {
        "raw_msgs_per_s": round(raw_best, 2),
        "raw_best_batch_size": raw_bs,
        "engine_msgs_per_s": round(engine_best, 2),
        "sequential_msgs_per_s": round(seq_best, 2),
        "engine_sequential_msgs_per_s": round(engine_seq, 2),
        "engine_vs_raw": round(engine_best / raw_best, 3) if raw_best else None,
        "engine_vs_sequential": round(engine_best / seq_best, 3) if seq_best else None,
        "engine_model_calls": calls,
        "engine_vs_raw_by_batch": {
            str(bs): round(engine_rate / raw_rate, 3) if raw_rate else None
            for bs, (raw_rate, engine_rate) in sorted(by_batch.items())
        },
        "engine_qe_msgs_per_s": round(qe_best, 2),
        "qe_vs_no_qe": round(qe_best / engine_best, 3) if engine_best else None,
        "messages": messages,
        "threads": threads,
        "beam_size": beam_size,
        "decoding_length": decoding_length,
        "compute_type": compute_type,
        "model_mb": round(model_mb, 1),
        "model_build_s": round(build_s, 1),
        "import_translation_ms": round(import_ms, 1),
        "rss_mb": round(rss, 1),
        "max_rss_mb": round(peak, 1),
        "quick": quick,
        "cpu_count": os.cpu_count(),
    }


# -- real peers: argostranslate and LibreTranslate on the same model ---------------------------


def run_peers(
    *,
    quick: bool = False,
    threads: int = 2,
    beam_size: int = 1,
    messages: int = 64,
    decoding_length: int = 32,
    compute_type: str = "int8",
    libretranslate: str | None = None,
    argos_python: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Daraja's engine against real argostranslate (one message at a time, as it translates)
    and a real LibreTranslate server, on one freshly built model with the same threads, beam
    and pinned decoding length. Peers run in their own environments (`translation.peers`);
    an absent peer is reported as such and not measured."""
    from translation import peers

    say = progress or (lambda _msg: None)
    lt = peers.find_libretranslate(libretranslate)
    argos = peers.default_argos_python(lt, argos_python)
    report = peers.peer_report(lt, argos)
    usable = {name for name, state in report.items() if state.startswith("found")}
    result: dict[str, Any] = {"peers": report}
    for name in sorted(set(report) - usable):
        say(f"peer {name} {report[name]}")
    if not usable:
        return result
    shape = QUICK if quick else BASE
    with tempfile.TemporaryDirectory(prefix="daraja-bench-peers-") as tmp:
        root = Path(tmp)
        say(f"building the {shape.layers}+{shape.layers}-layer d{shape.d_model} model for peers")
        model_dir, sp_path = build_random_model(root / "pkg", shape, quantization=compute_type)
        texts = sentences(messages * 4, seed=2)
        warm, concurrent = texts[:8], texts[messages : 2 * messages]
        single = texts[2 * messages : 3 * messages][: min(32, messages)]
        home = peers.PeerHome(
            root / "home",
            threads=threads,
            beam_size=beam_size,
            decoding_length=decoding_length,
            compute_type=compute_type,
        )
        # Two entries (both directions of one model): with fewer than two installed packages
        # LibreTranslate fetches the package index at start.
        for name, src, tgt in (("bench_en_fr", "en", "fr"), ("bench_fr_en", "fr", "en")):
            home.add_package_dir(model_dir.parent, name, _peer_metadata(src, tgt))
        seeder = argos if "argostranslate" in usable and argos else None
        if seeder is None and lt is not None:
            seeder = peers.python_of(lt)
        assert seeder is not None
        say("seeding the peers' spaCy sentencizer cache (no download)")
        home.seed(seeder)

        daraja = asyncio.run(
            _daraja_rates(
                model_dir,
                sp_path,
                threads=threads,
                beam_size=beam_size,
                decoding_length=decoding_length,
                compute_type=compute_type,
                warm=warm,
                concurrent=concurrent,
                single=single,
            )
        )
        result.update(daraja)
        say(
            f"daraja: {daraja['daraja_msgs_per_s']:.1f} msg/s ({messages} concurrent), "
            f"{daraja['daraja_one_at_a_time_msgs_per_s']:.1f} msg/s one at a time"
        )
        if "argostranslate" in usable and argos is not None:
            say(f"argostranslate: {len(single)} messages one at a time")
            seconds, outputs = peers.argos_one_at_a_time(
                argos, home, single, "en", "fr", warmup=warm
            )
            rate = len(single) / seconds
            result["argostranslate_msgs_per_s"] = round(rate, 2)
            # The pinned length reached the peer: each output token of the random model is one
            # word, so its outputs have `decoding_length` words, as Daraja's do.
            words = [len(text.split()) for text in outputs]
            result["argostranslate_mean_output_words"] = round(sum(words) / len(words), 1)
            result["daraja_vs_argostranslate"] = round(daraja["daraja_msgs_per_s"] / rate, 3)
        if "libretranslate" in usable and lt is not None:
            say("libretranslate: starting a server on loopback (loads the model)")
            rate, burst = asyncio.run(
                _libretranslate_rate(
                    lt,
                    home,
                    warm,
                    concurrent,
                    _BenchPackage(model_dir=model_dir, sp_model=sp_path),
                    _peer_engine_config(threads, beam_size, decoding_length, compute_type),
                    texts[3 * messages :],
                )
            )
            result["libretranslate_msgs_per_s"] = round(rate, 2)
            result["daraja_vs_libretranslate"] = round(daraja["daraja_msgs_per_s"] / rate, 3)
            result["libretranslate_burst"] = burst
    result.update(
        messages=messages,
        threads=threads,
        beam_size=beam_size,
        decoding_length=decoding_length,
        compute_type=compute_type,
        quick=quick,
    )
    return result


def _peer_metadata(source: str, target: str) -> dict[str, Any]:
    names = {"en": "English", "fr": "French"}
    return {
        "package_version": "1.0",
        "argos_version": "1.9",
        "type": "translate",
        "from_code": source,
        "to_code": target,
        "from_name": names[source],
        "to_name": names[target],
        "name": f"Daraja benchmark {source}-{target} (random weights)",
    }


async def _daraja_rates(
    model_dir: Path,
    sp_path: Path,
    *,
    threads: int,
    beam_size: int,
    decoding_length: int,
    compute_type: str,
    warm: Sequence[str],
    concurrent: Sequence[str],
    single: Sequence[str],
) -> dict[str, float]:
    """Daraja's engine on the peers' model: all messages at once, then one at a time."""
    from translation.engine import Engine

    config = _peer_engine_config(threads, beam_size, decoding_length, compute_type)
    engine = Engine(_BenchStore(_BenchPackage(model_dir=model_dir, sp_model=sp_path)), config)
    try:
        await asyncio.gather(*(engine.translate(t, "fr", source="en") for t in warm))
        burst = 0.0
        for _ in range(2):  # best of two, as the main section does
            t0 = time.perf_counter()
            await asyncio.gather(*(engine.translate(t, "fr", source="en") for t in concurrent))
            burst = max(burst, len(concurrent) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for text in single:
            await engine.translate(text, "fr", source="en")
        one = len(single) / (time.perf_counter() - t0)
    finally:
        await engine.close()
    return {
        "daraja_msgs_per_s": round(burst, 2),
        "daraja_one_at_a_time_msgs_per_s": round(one, 2),
    }


def _peer_engine_config(
    threads: int, beam_size: int, decoding_length: int, compute_type: str
) -> Any:
    from translation.engine import EngineConfig

    return EngineConfig(
        threads=threads,
        compute_type=compute_type,
        batch_size=32,
        beam_size=beam_size,
        cache_size=0,
        min_decoding_length=decoding_length,
        max_decoding_length=decoding_length,
        verify_checksums=False,
    )


async def _libretranslate_rate(
    executable: Path,
    home: Any,
    warm: Sequence[str],
    texts: Sequence[str],
    pkg: _BenchPackage,
    config: Any,
    burst: Sequence[str],
) -> tuple[float, dict[str, Any]]:
    """Messages per second a real LibreTranslate server translates, one request each (it does
    not batch across requests), as many in flight as it has threads; then a burst through
    Daraja's remote-first engine with the default limits (10 s timeout, 2 in flight), local
    models as the fallback: how many messages each side served, timeouts, repeats."""
    from translation import peers
    from translation.libretranslate import ClientLimits, LibreTranslateClient, RemoteFirstEngine
    from translation.types import Route

    async with peers.LibreTranslateServer(executable, home, threads=1) as server:
        client = LibreTranslateClient(
            [server.url],
            timeout_s=600,
            limits=ClientLimits(max_in_flight=1, timeout_max_s=600, queue_wait_s=3600),
        )
        try:
            for text in warm:
                await client.translate([text], "en", "fr")
            t0 = time.perf_counter()
            await asyncio.gather(*(client.translate([t], "en", "fr") for t in texts))
            rate = len(texts) / (time.perf_counter() - t0)
        finally:
            await client.close()
        remote_client = LibreTranslateClient([server.url], timeout_s=10.0)
        engine = RemoteFirstEngine(_BenchStore(pkg), config, client=remote_client)
        try:
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(engine.translate(t, "fr", source="en") for t in burst)
            )
            seconds = time.perf_counter() - t0
        finally:
            await engine.close()
        stats = remote_client.stats[server.url]
        remote = sum(1 for r in results if r.route == Route.REMOTE)
        return rate, {
            "messages": len(burst),
            "seconds": round(seconds, 2),
            "served_remotely": remote,
            "served_locally": len(burst) - remote,
            "requests": stats.requests,
            # Each timeout is a request abandoned (the server may still finish it for nobody)
            # whose segments the local models translated instead.
            "timeouts": stats.timeouts,
        }
