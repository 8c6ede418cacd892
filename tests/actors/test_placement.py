"""Placement, membership and the model cache: pure code, tested without sockets."""

from collections import Counter

from botyard.actors import placement
from botyard.actors.membership import Membership
from botyard.actors.model_cache import ModelCache

BOTS = [f"tenant{i % 50}/bot{i}" for i in range(4000)]


def test_rendezvous_is_stable_and_moves_only_what_it_must():
    three = {"a": 1.0, "b": 1.0, "c": 1.0}
    before = {bot: placement.copies_for(bot, three, 2) for bot in BOTS}
    assert before == {bot: placement.copies_for(bot, dict(reversed(list(three.items()))), 2) for bot in BOTS}
    assert all(len(set(c)) == 2 for c in before.values())
    # c leaves: a bot keeps every surviving copy it had; only c's places move
    two = {"a": 1.0, "b": 1.0}
    for bot, copies in before.items():
        assert set(copies) - {"c"} <= set(placement.copies_for(bot, two, 2))
    # d joins: it takes about a quarter of the first copies, and no bot loses a copy to anything but d
    four = {**three, "d": 1.0}
    firsts = Counter(placement.copies_for(bot, four, 1)[0] for bot in BOTS)
    assert 0.2 < firsts["d"] / len(BOTS) < 0.3
    for bot, copies in before.items():
        assert set(placement.copies_for(bot, four, 2)) - set(copies) <= {"d"}


def test_capacity_weights_the_share():
    firsts = Counter(placement.rank(bot, {"small": 1.0, "big": 3.0})[0] for bot in BOTS)
    assert 0.7 < firsts["big"] / len(BOTS) < 0.8


def test_conversation_owner_is_one_of_the_bot_copies_and_spreads():
    nodes = {"a": 1.0, "b": 1.0, "c": 1.0}
    copies = placement.copies_for("t/b", nodes, 2)
    owners = Counter(placement.owner(f"t/b/c{i}", copies, nodes) for i in range(2000))
    assert set(owners) == set(copies) and min(owners.values()) > 800


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_membership_joins_expires_and_leaves():
    clock = Clock()
    view = Membership("a", timeout=3.0, clock=clock)
    assert view.owner_of("t/b", "t/b/c1") == "a"  # alone: everything is ours
    assert view.heard({"node": "b", "capacity": 1.0}) and view.heard({"node": "c", "capacity": 1.0})
    assert not view.heard({"node": "b", "capacity": 1.0})  # nothing changed
    assert sorted(view.copies_of("t/b")) == sorted(placement.copies_for("t/b", {"a": 1, "b": 1, "c": 1}, 2))
    clock.now += 2.0
    view.heard({"node": "c", "capacity": 1.0})
    clock.now += 2.0  # b silent for 4 s, c for 2 s
    assert view.expire() and sorted(view.members) == ["a", "c"]
    assert view.heard({"node": "c", "draining": True}) and sorted(view.members) == ["a"]
    assert view.snapshot()["nodes"]["a"]["capacity"] == 1.0


def test_a_hot_bot_gets_more_copies_and_loses_them_when_it_cools():
    view = Membership("a", copies=2, hot_rate=50.0)
    for n in "bcde":
        view.heard({"node": n})
    assert len(view.copies_of("t/hot")) == 2
    view.heard({"node": "b", "hot": {"t/hot": 80.0}})
    view.heard({"node": "c", "hot": {"t/hot": 80.0}})
    assert len(view.copies_of("t/hot")) == 5  # 160 turns/s: 2 + 3, capped at the 5 nodes
    view.heard({"node": "b", "hot": {}})
    view.heard({"node": "c", "hot": {}})
    assert len(view.copies_of("t/hot")) == 2


def test_a_bots_conversations_go_to_its_first_copy_until_it_is_hot():
    view = Membership("a", copies=2, hot_rate=50.0)
    for n in "bcd":
        view.heard({"node": n})
    bot = next(f"t/b{i}" for i in range(100) if view.copies_of(f"t/b{i}")[0] != "a")  # another node leaves below
    first, second = view.copies_of(bot)
    assert {view.owner_of(bot, f"{bot}/c{i}") for i in range(200)} == {first}  # one node loads the model
    view.heard({"node": "b", "hot": {bot: 120.0}})
    owners = Counter(view.owner_of(bot, f"{bot}/c{i}") for i in range(2000))
    assert set(owners) == set(view.copies_of(bot)) and len(owners) == 4  # hot: spread over 2 + 2 copies
    view.heard({"node": "b", "hot": {}})
    view.heard({"node": first, "draining": True})  # its first copy leaves: the next one takes all
    assert {view.owner_of(bot, f"{bot}/c{i}") for i in range(200)} == {second}
    spread = Membership("a", copies=2, spread="all")
    for n in "bcd":
        spread.heard({"node": n})
    assert len({spread.owner_of("t/b", f"t/b/c{i}") for i in range(200)}) == 2


def test_model_cache_evicts_by_bytes_and_protects_hot_models():
    cache = ModelCache(100)
    for key in "abc":
        cache.put(key, key.upper(), 30)
    assert cache.get("a") == "A" and cache.get("a") == "A"  # used twice: protected
    for key in "defgh":  # a burst of one-off bots
        cache.put(key, key.upper(), 30)
    assert "a" in cache and cache.bytes <= 100
    assert cache.get("b") is None and cache.stats.evictions == 5
    assert cache.put("big", "BIG", 500) == [k for k in ("g", "h", "a")]  # never evicts what it just loaded
    assert list(cache.probation) == ["big"] and cache.bytes == 500
