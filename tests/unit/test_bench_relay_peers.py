"""`daraja bench relay`'s yardsticks: the plain relay bot sends every copy and counts what it
sent; the command refuses backends it does not know."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from bot.cli import main
from bot.devtools.bench.plain_relay import PlainGroup, PlainRelay
from translation.types import LanguageGuess, Route, Translation


class FakeTranslator:
    """Marks each text with its target language; records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def detect(self, text: str, *, chat_languages: Any, author_language: Any) -> LanguageGuess:
        return LanguageGuess(chat_languages[0], "prior:chat", 0.9)

    async def translate_many(self, text: str, targets: Any, *, source: str) -> list[Translation]:
        self.calls.append((text, tuple(targets)))
        return [
            Translation(
                text=f"[{t}] {text}",
                source=source,
                target=t,
                source_decided_by="given",
                route=Route.NONE,
            )
            for t in targets
        ]


@dataclass
class FakeBot:
    """Answers send_message like the Bot API: a new message id per chat."""

    sent: list[tuple[int, str]]
    next_id: int = 100

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        await asyncio.sleep(0)
        self.next_id += 1
        self.sent.append((chat_id, text))
        return SimpleNamespace(message_id=self.next_id)


def _update(chat_id: int, message_id: int, text: str) -> Any:
    message = SimpleNamespace(
        text=text, message_id=message_id, from_user=SimpleNamespace(full_name="Officer <A>")
    )
    return SimpleNamespace(effective_message=message, effective_chat=SimpleNamespace(id=chat_id))


async def test_the_plain_relay_sends_every_copy_in_each_groups_language() -> None:
    groups = {
        -1: PlainGroup(-1, "U00", "ht"),
        -2: PlainGroup(-2, "U01", "fr"),
        -3: PlainGroup(-3, "U02", "en"),
        -4: PlainGroup(-4, "U03", "fr"),
    }
    translator = FakeTranslator()
    relay = PlainRelay(groups, translator)
    bot = FakeBot([])
    context = SimpleNamespace(bot=bot)
    await asyncio.gather(
        *(relay.on_message(_update(-1 - i % 4, i + 1, f"msg {i}"), context) for i in range(8))
    )
    assert relay.sent == 8 * 3
    assert relay.counts() == {
        "delivered": 24,
        "duplicated": 0,
        "order_violations": 0,
        "failed_sends": 0,
    }
    # One translation call per message, into the partner languages only.
    assert ("msg 0", ("en", "fr")) in translator.calls
    to_english = [text for chat, text in bot.sent if chat == -3]
    assert "[en] msg 0" in to_english[0]
    assert "<b>U00</b> · Officer &lt;A&gt;" in to_english[0]
    assert all(chat != -1 for chat, text in bot.sent if "msg 0" in text)


async def test_the_plain_relay_counts_copies_sent_out_of_order() -> None:
    relay = PlainRelay({-1: PlainGroup(-1, "U00", "en"), -2: PlainGroup(-2, "U01", "en")}, None)
    relay.streams[(-1, -2)] = [(11, 2), (10, 1), (12, 3), (13, 5), (14, 4)]
    relay.copies.update({(-1, n, -2): 1 for n in range(1, 6)})
    assert relay.counts()["order_violations"] == 1


def test_bench_relay_refuses_an_unknown_backend(capsys: Any) -> None:
    assert main(["bench", "relay", "--backends", "sqlite,mysql"]) == 2
    assert "--backends" in capsys.readouterr().err


def test_bench_relay_worker_needs_postgresql_alone(capsys: Any) -> None:
    assert main(["bench", "relay", "--backends", "sqlite,postgresql", "--worker"]) == 2
    assert "--worker" in capsys.readouterr().err


def test_bench_relay_refuses_rounds_out_of_range(capsys: Any) -> None:
    assert main(["bench", "relay", "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err


async def test_rounds_alternate_the_backends_and_take_the_median_ratio(monkeypatch: Any) -> None:
    # The machine's speed drifts between runs: each round's PostgreSQL ÷ SQLite is taken
    # within the round, the order alternates, and the figure is the median round's.
    import bot.devtools.bench.relay as relay

    order: list[str] = []
    rates = iter([500.0, 400.0, 300.0, 300.0, 600.0, 300.0])  # sqlite, pg | pg, sqlite | ...

    async def fake_bench(*_args: Any, database_url: str | None, **_kw: Any) -> dict[str, Any]:
        backend = "postgresql" if database_url else "sqlite"
        order.append(backend)
        return {"copies_per_s": next(rates), "lost": 0, "duplicated": 0}

    class Cluster:
        url = "postgresql+asyncpg://bench"

        def stop(self) -> None:
            pass

    monkeypatch.setattr(relay, "bench_relay", fake_bench)
    monkeypatch.setattr(relay, "start_cluster", Cluster)
    result = await relay.bench_relay_compare(
        10, 3, limit_s=1, backends=("sqlite", "postgresql"), peers=False, rounds=3
    )
    assert order == ["sqlite", "postgresql", "postgresql", "sqlite", "sqlite", "postgresql"]
    assert result["postgresql_vs_sqlite_by_round"] == [0.8, 1.0, 0.5]
    assert result["ratios"]["postgresql_vs_sqlite"] == 0.8
    assert result["daraja"]["sqlite"]["copies_per_s"] == 500.0  # the median of 500, 300, 600
    assert result["complete"] is True
