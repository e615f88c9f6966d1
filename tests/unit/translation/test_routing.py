"""Routing: direct, multilingual, pivot through English, and what a missing pair tells you."""

from __future__ import annotations

import pytest

from tests.unit.translation.engine_fakes import direct, multi, standard_packages
from translation.errors import MissingModel, UnsupportedLanguage
from translation.routing import Router
from translation.types import Route


def test_direct_package_is_preferred_over_multilingual() -> None:
    router = Router([multi("m", ("ht", "en", "sw")), direct("ht", "en")])
    plan = router.plan("ht", "en")
    assert plan.route is Route.DIRECT
    assert plan.models == ("ht_en",)


def test_multilingual_package_uses_target_and_source_prefixes() -> None:
    pkg = multi("m", ("ht", "sw"))
    pkg.source_prefixes["ht"] = "__src_ht__"
    plan = Router([pkg]).plan("ht", "sw")
    assert plan.route is Route.MULTILINGUAL
    (hop,) = plan.hops
    assert hop.target_prefix == ("__sw__",)
    assert hop.source_prefix == ("__src_ht__",)


def test_multilingual_beats_pivot() -> None:
    plan = Router(standard_packages()).plan("sw", "ht")
    assert plan.route is Route.MULTILINGUAL
    assert plan.models == ("multi_ht_sw",)


def test_pivot_through_english_records_both_hops() -> None:
    plan = Router(standard_packages()).plan("ht", "fr")
    assert plan.route is Route.PIVOT
    assert plan.models == ("ht_en", "en_fr")
    assert [(h.source, h.target) for h in plan.hops] == [("ht", "en"), ("en", "fr")]


def test_same_language_needs_no_model() -> None:
    plan = Router([]).plan("sw", "sw")
    assert plan.route is Route.SAME
    assert plan.hops == ()


def test_missing_pair_names_the_missing_leg_and_the_command() -> None:
    router = Router([direct("ht", "en")])
    with pytest.raises(MissingModel) as err:
        router.plan("ht", "sw")
    msg = str(err.value)
    assert "ht→sw" in msg
    assert "en-sw" in msg  # the missing pivot leg
    assert "daraja models install" in msg
    assert "daraja models catalog" in msg
    assert (err.value.source, err.value.target) == ("ht", "sw")


@pytest.mark.parametrize("code", ["xx", "EN", "english", "", "e n"])
def test_unknown_language_code(code: str) -> None:
    with pytest.raises(UnsupportedLanguage, match="use one of en, fr, ht, sw"):
        Router(standard_packages()).plan(code, "en")


def test_a_package_can_add_a_language() -> None:
    router = Router([direct("es", "en")])
    assert router.plan("es", "en").route is Route.DIRECT


def test_hop_that_failed_self_test_is_avoided_when_another_route_exists() -> None:
    router = Router(standard_packages())
    router.failed.add(("multi_ht_sw", "ht", "sw"))
    plan = router.plan("ht", "sw")
    assert plan.route is Route.PIVOT
    assert plan.models == ("ht_en", "en_sw")


def test_hop_that_failed_self_test_without_alternative_is_refused() -> None:
    router = Router([direct("ht", "en")])
    router.failed.add(("ht_en", "ht", "en"))
    with pytest.raises(MissingModel, match="failed its self-test"):
        router.plan("ht", "en")


def test_pairs_lists_every_single_hop_pair() -> None:
    pairs = Router(standard_packages()).pairs()
    assert ("ht", "sw") in pairs
    assert ("sw", "ht") in pairs
    assert ("en", "fr") in pairs
    assert ("ht", "fr") not in pairs  # pivot only
