"""The anti-replay window (wgpy/core/replay.py): the kernel's and wireguard-go's selftests step by step,
then a model check against a plain set of seen counters."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from wgpy.core.constants import REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE
from wgpy.core.replay import ReplayFilter

from .vectors import cases, load

KERNEL_REJECT_AFTER_MESSAGES = 2**64 - 1 - REPLAY_WINDOW_SIZE - 1   # U64_MAX - COUNTER_WINDOW_SIZE - 1


def expand(steps):
    """(label, counter, accept) for every call a case's steps stand for, in order."""
    for step in steps:
        if "counter_range" in step:
            r = step["counter_range"]
            for i, counter in enumerate(range(r["first"], r["last"] + r["step"], r["step"])):
                yield f"test {step['n_first'] + i}", counter, step["accept"]
        else:
            yield f"test {step['n']} ({step.get('expr', step['counter'])})", step["counter"], step["accept"]


@pytest.mark.parametrize("case", cases("replay_counter"))
def test_selftest_sequence(case):
    assert case["window_size"] == REPLAY_WINDOW_SIZE
    replay = ReplayFilter(case["reject_after_messages"])
    for label, counter, accept in expand(case["steps"]):
        assert replay.accept(counter) is accept, f"{case['id']} {label}: counter {counter}"


def test_each_implementation_has_its_own_limit():
    limits = {c["implementation"]: c["reject_after_messages"] for c in load("replay_counter")["cases"]}
    assert limits == {"linux kernel": KERNEL_REJECT_AFTER_MESSAGES, "wireguard-go": REJECT_AFTER_MESSAGES}


@pytest.mark.parametrize("limit", [REJECT_AFTER_MESSAGES, KERNEL_REJECT_AFTER_MESSAGES])
def test_the_limit_is_the_first_refused_counter(limit):
    replay = ReplayFilter(limit)
    assert not replay.accept(limit)
    assert not replay.accept(2**64 - 1)
    assert replay.accept(limit - 1)
    assert not replay.accept(limit)


def test_window_edge_is_exact():
    replay = ReplayFilter()
    top = 5 * REPLAY_WINDOW_SIZE + 17
    assert replay.accept(top)
    assert not replay.accept(top - REPLAY_WINDOW_SIZE - 1)
    assert replay.accept(top - REPLAY_WINDOW_SIZE)
    assert not replay.accept(top - REPLAY_WINDOW_SIZE)


def test_sliding_forgets_what_fell_out_of_the_window():
    """After the window moves past a counter and wraps the ring, the old bit does not linger as 'seen'."""
    replay = ReplayFilter()
    for counter in range(0, 3 * 8192, 61):
        assert replay.accept(counter)
    for counter in range(3 * 8192 - REPLAY_WINDOW_SIZE, 3 * 8192):
        assert replay.accept(counter) is (counter % 61 != 0)


def test_reset_forgets_everything():
    replay = ReplayFilter()
    for counter in (0, 1, 100, 10**9):
        assert replay.accept(counter)
    replay.reset()
    for counter in (0, 1, 100, 10**9):
        assert replay.accept(counter)


@pytest.mark.parametrize("limit", [0, -1, 2**64 + 1])
def test_a_bad_limit_is_a_caller_mistake(limit):
    with pytest.raises(ValueError):
        ReplayFilter(limit)


BITS = st.sampled_from([0, 1, 2, 31, 62, 63])


class ReplayModel(RuleBasedStateMachine):
    """ReplayFilter against the rule written out (the kernel's counter_validate semantics): accept iff
    counter < limit, not seen before, and highest_seen - counter <= window (highest_seen = 0 at first)."""

    @initialize(
        limit=st.sampled_from([REJECT_AFTER_MESSAGES, KERNEL_REJECT_AFTER_MESSAGES, 40_000]),
        start_near_the_limit=st.booleans(),
    )
    def start(self, limit, start_near_the_limit):
        self.limit = limit
        self.replay = ReplayFilter(limit)
        self.seen: set[int] = set()
        self.highest = 0
        if start_near_the_limit:
            self.check(limit - 20_000)   # u64-sized counters, and the limit within a few jumps

    def check(self, counter: int) -> None:
        counter = max(counter, 0)
        expected = counter < self.limit and counter not in self.seen and self.highest - counter <= REPLAY_WINDOW_SIZE
        if expected:
            self.seen.add(counter)
            self.highest = max(self.highest, counter)
        assert self.replay.accept(counter) is expected, counter

    # Counters are drawn as (block, bit) near the highest one, so the same ring slot and bit come back
    # often: stale bits left in a reused slot, the window edge and the block arithmetic all get hit.
    @rule(blocks=st.integers(-130, 3), bit=BITS)
    def near_the_top(self, blocks, bit):
        self.check(((self.highest >> 6) + blocks) * 64 + bit)

    @rule(delta=st.integers(-2, 2))
    def at_the_window_edge(self, delta):
        self.check(self.highest - REPLAY_WINDOW_SIZE + delta)

    @rule(blocks=st.integers(1, 260), bit=BITS)
    def jump_ahead(self, blocks, bit):
        self.check(((self.highest >> 6) + blocks) * 64 + bit)

    @rule(blocks=st.integers(64, 127), bit=BITS)
    def advance_most_of_the_ring(self, blocks, bit):
        """Two of these in a row slide the ring all the way round without a full reset."""
        self.check(((self.highest >> 6) + blocks) * 64 + bit)

    @rule(delta=st.integers(-2, 2))
    def at_the_limit(self, delta):
        self.check(self.limit + delta)

    @rule(counter=st.integers(0, 20_000))
    def small(self, counter):
        self.check(counter)

    @rule(earlier=st.data())
    def replay_a_seen_counter(self, earlier):
        if self.seen:
            self.check(earlier.draw(st.sampled_from(sorted(self.seen))))

    @rule(earlier=st.data())
    def same_slot_and_bit_as_a_seen_counter(self, earlier):
        """The lowest counter in the window that shares its ring slot and bit with a seen one (8192
        apart): it is fresh unless it is that counter itself, however the ring got there."""
        if self.seen:
            seen = earlier.draw(st.sampled_from(sorted(self.seen)))
            floor = max(self.highest - REPLAY_WINDOW_SIZE, 0)
            self.check(seen + -(-(floor - seen) // 8192) * 8192 if seen < floor else seen)

    @rule()
    def reset(self):
        self.replay.reset()
        self.seen.clear()
        self.highest = 0


ReplayModel.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_replay_model = ReplayModel.TestCase


def test_equal_windows_mean_the_same_counters_were_seen():
    """``window()`` shows the bitmaps, not only the highest counter (what the fuzz snapshot compares)."""
    a, b = ReplayFilter(), ReplayFilter()
    for counter in (0, 5, 9):
        a.accept(counter)
    for counter in (0, 4, 9):
        b.accept(counter)
    assert a.window()[0] == b.window()[0] == 9 and a.window() != b.window()
    b.accept(5)
    a.accept(4)
    assert a.window() == b.window()
