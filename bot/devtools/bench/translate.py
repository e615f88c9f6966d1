"""`daraja bench translate`: engine vs raw CTranslate2 vs one at a time, in one run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register_translate(benches: Any) -> None:
    """Add `translate` to the `daraja bench` subcommands."""
    help_text = "translation throughput: engine vs raw CTranslate2 vs one at a time"
    bench: argparse.ArgumentParser = benches.add_parser(
        "translate", help=help_text, description=help_text
    )
    bench.add_argument(
        "--json", action="store_true", help="print one JSON object on the last line"
    )
    _translate_options(bench)
    _peer_options(bench)
    bench.set_defaults(func=_translate)


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _translate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small model: checks the command end to end in seconds",
    )
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (2)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--messages", type=int, default=64, help="messages per run (64)")
    parser.add_argument(
        "--decode-len", type=int, default=32, help="pinned output length in tokens (32)"
    )
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type")
    parser.add_argument("--repeats", type=int, default=2, help="runs per path; best is kept")


def _translate(args: argparse.Namespace) -> int:
    from translation import bench

    if args.messages < 1 or args.threads < 0 or args.beam < 1 or args.decode_len < 1:
        print(
            "daraja: --messages, --beam and --decode-len must be >= 1, --threads >= 0",
            file=sys.stderr,
        )
        return 2
    result = bench.run(
        quick=args.quick,
        threads=args.threads,
        beam_size=args.beam,
        messages=args.messages,
        decoding_length=args.decode_len,
        compute_type=args.compute_type,
        repeats=max(1, args.repeats),
        progress=_progress,
    )
    print(
        f"model {result['model_mb']} MB {result['compute_type']}, {result['threads']} threads, "
        f"beam {result['beam_size']}, {result['messages']} messages of "
        f"{result['decoding_length']} output tokens"
    )
    print(
        f"(a) raw translate_batch, batch {result['raw_best_batch_size']}: "
        f"{result['raw_msgs_per_s']:.1f} msg/s"
    )
    print(f"(b) engine, {result['messages']} concurrent:  {result['engine_msgs_per_s']:.1f} msg/s")
    print(f"(c) one at a time (raw):       {result['sequential_msgs_per_s']:.1f} msg/s")
    print(
        f"(d) engine with quality estimation: {result['engine_qe_msgs_per_s']:.1f} msg/s, "
        f"with QE / without {result['qe_vs_no_qe']:.2f} (target >= 0.5)"
    )
    print(f"    engine one at a time:      {result['engine_sequential_msgs_per_s']:.1f} msg/s")
    print(
        f"engine/raw {result['engine_vs_raw']:.2f} (target >= 0.9), "
        f"engine/one-at-a-time {result['engine_vs_sequential']:.2f} (target >= 4)"
    )
    by_batch = result["engine_vs_raw_by_batch"]
    print(
        "engine/raw at each batch size (target >= 0.9): "
        + ", ".join(f"{bs}: {ratio:.2f}" for bs, ratio in by_batch.items())
    )
    print(
        f"import translation {result['import_translation_ms']:.0f} ms, "
        f"RSS {result['rss_mb']:.0f} MB (peak {result['max_rss_mb']:.0f} MB)"
    )
    result["peers"] = _peers(args)
    if args.json:
        print(json.dumps(result))
    return 0


def _peer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--libretranslate",
        metavar="PATH",
        help="the `libretranslate` executable of its own environment (default: on PATH)",
    )
    parser.add_argument(
        "--argos-python",
        metavar="PATH",
        help="a Python with full argostranslate and spaCy (default: the libretranslate one)",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip argostranslate and LibreTranslate"
    )


def _peers(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the real peers where installed; say which are absent."""
    from translation import bench

    if args.no_peers:
        return {}
    peers = bench.run_peers(
        quick=args.quick,
        threads=args.threads,
        beam_size=args.beam,
        messages=args.messages,
        decoding_length=args.decode_len,
        compute_type=args.compute_type,
        libretranslate=args.libretranslate,
        argos_python=args.argos_python,
        progress=_progress,
    )
    print("peers (same model, threads, beam and output length; own environments):")
    for name, state in peers["peers"].items():
        print(f"    {name}: {state}")
    if "daraja_msgs_per_s" in peers:
        print(
            f"    daraja engine: {peers['daraja_msgs_per_s']:.1f} msg/s "
            f"({peers['messages']} concurrent), "
            f"{peers['daraja_one_at_a_time_msgs_per_s']:.1f} msg/s one at a time"
        )
    for name in ("argostranslate", "libretranslate"):
        rate = peers.get(f"{name}_msgs_per_s")
        if rate is not None:
            ratio = peers[f"daraja_vs_{name}"]
            print(f"    {name}: {rate:.1f} msg/s; daraja/{name} {ratio:.2f} (target >= 4)")
    burst = peers.get("libretranslate_burst")
    if burst:
        print(
            f"    burst of {burst['messages']} through Daraja's LibreTranslate client "
            f"(defaults): {burst['served_remotely']} remote, {burst['served_locally']} local, "
            f"{burst['timeouts']} timed out, {burst['requests']} requests, "
            f"{burst['seconds']:.1f} s"
        )
    return peers
