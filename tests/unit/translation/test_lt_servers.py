"""What the LibreTranslate client remembers of each server, on a clock the test moves."""

from __future__ import annotations

from translation.lt_servers import Pacer, ServerState
from translation.tags import strip_leaked_tags


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def server(clock: Clock, **kwargs: object) -> ServerState:
    options: dict[str, object] = {
        "max_in_flight": 2,
        "per_minute": 0.0,
        "batch_limit": 16,
        "char_limit": None,
    }
    options.update(kwargs)
    return ServerState("http://lt1:5000", clock=clock, **options)  # type: ignore[arg-type]


def test_a_failing_languages_list_is_retried_with_doubling_backoff() -> None:
    clock = Clock()
    state = server(clock)
    pauses = []
    for _ in range(12):
        assert state.languages_due()
        pauses.append(state.languages_failed())
        assert not state.languages_due()
        clock.now += pauses[-1]
    assert pauses[:5] == [1, 2, 4, 8, 16]
    assert pauses[-1] == 300  # capped at five minutes
    state.languages_ok(frozenset({("ht", "en")}), ttl_s=600)
    clock.now += 599
    assert not state.languages_due()
    clock.now += 2
    assert state.languages_due()


def test_a_pair_it_lacks_is_skipped_until_the_list_says_otherwise() -> None:
    clock = Clock()
    state = server(clock)
    state.languages_ok(frozenset({("ht", "en"), ("en", "ht")}), ttl_s=600)
    assert state.serves("ht", "en")
    assert not state.serves("sw", "en")
    state.pair_missing("ht", "en", ttl_s=600)
    assert not state.serves("ht", "en")
    assert state.serves("en", "ht")
    state.languages_ok(frozenset({("ht", "en")}), ttl_s=600)  # listed again after a refresh
    assert state.serves("ht", "en")


def test_failures_are_remembered_per_pair_with_growing_pauses() -> None:
    clock = Clock()
    state = server(clock)
    assert [state.pair_failed("ht", "en", 30) for _ in range(3)] == [30, 60, 120]
    assert state.serves("en", "ht")
    assert not state.serves("ht", "en")
    clock.now += 121
    assert state.serves("ht", "en")
    state.pair_ok("ht", "en")
    assert state.pair_failed("ht", "en", 30) == 30


def test_pacer_charges_each_segment_and_refuses_long_waits() -> None:
    clock = Clock()
    pacer = Pacer(60, clock)  # one segment a second
    assert pacer.reserve(50, max_wait_s=5) == 0
    assert pacer.reserve(10, max_wait_s=5) == 0
    assert pacer.reserve(3, max_wait_s=5) == 3  # borrowed ahead: due in 3 s
    assert pacer.reserve(10, max_wait_s=5) is None  # 13 s away: not sent
    clock.now += 60
    pacer.exhaust()  # a 429 says the budget is gone whatever Daraja counted
    assert pacer.reserve(1, max_wait_s=5) == 1
    assert Pacer(0, clock).reserve(1000, max_wait_s=0) == 0  # not paced


def test_chunks_respect_batch_and_char_limits() -> None:
    state = server(Clock(), batch_limit=2, char_limit=10)
    items = list(enumerate(["a", "bb", "a very long segment", "ccc", "d", "e"]))
    chunks, too_long = state.chunks(items)
    assert [[i for i, _ in c] for c in chunks] == [[0, 1], [3, 4], [5]]
    assert too_long == [2]


def test_leaked_tags_are_cut_but_words_and_quoted_tags_stay() -> None:
    assert strip_leaked_tags("Swh Latn Kikosi kimefika.") == ("Kikosi kimefika.", True)
    assert strip_leaked_tags("swh_Latn Kikosi") == ("Kikosi", True)
    assert strip_leaked_tags("__sw__ Kikosi") == ("Kikosi", True)
    assert strip_leaked_tags(">>swh<< Kikosi") == ("Kikosi", True)
    for text in ("An Arab man", "The Thai team", "Unit Latn road", "Nou la"):
        assert strip_leaked_tags(text) == (text, False)
    assert strip_leaked_tags("tag swh_Latn", "tag swh_Latn") == ("tag swh_Latn", False)
