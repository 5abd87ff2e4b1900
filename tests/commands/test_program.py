"""The program snapshot: what is in force at an instant, worked out once per span between
two versions taking effect, is what each version's own history says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from loyalty.commands.program import Epochs
from loyalty.domain.versioning import Version, version_in_force

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def histories_of(offsets: list[list[int]]) -> list[list[Version[str]]]:
    """Version histories, each taking effect at the given minutes after ``EPOCH``."""
    return [
        [
            Version(number=n, effective_from=EPOCH + timedelta(minutes=m), terms=f"{i}.{n}")
            for n, m in enumerate(sorted(set(minutes)), start=1)
        ]
        for i, minutes in enumerate(offsets)
    ]


def in_force(histories: list[list[Version[str]]], at: datetime) -> tuple[str, ...]:
    return tuple(
        version.terms
        for history in histories
        if (version := version_in_force(history, at)) is not None
    )


@given(
    offsets=st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=4), max_size=5),
    instants=st.lists(st.integers(-2, 55), min_size=1, max_size=20),
    seconds=st.sampled_from([0, 1, 59]),
)
def test_what_holds_at_any_instant_is_what_the_versions_in_force_then_give(
    offsets: list[list[int]], instants: list[int], seconds: int
) -> None:
    histories = histories_of(offsets)

    epochs = Epochs.of(histories, lambda at: in_force(histories, at))

    for minute in instants:
        at = EPOCH + timedelta(minutes=minute, seconds=seconds)
        assert epochs.at(at) == in_force(histories, at)


def test_nothing_holds_before_the_first_version_nor_without_versions() -> None:
    histories = histories_of([[10], [20, 30]])

    epochs = Epochs.of(histories, lambda at: in_force(histories, at))

    assert epochs.at(EPOCH + timedelta(minutes=10) - timedelta(microseconds=1)) == ()
    assert epochs.at(EPOCH + timedelta(minutes=10)) == ("0.1",)
    assert epochs.at(EPOCH + timedelta(minutes=30)) == ("0.1", "1.2")
    assert Epochs.of([], lambda at: in_force([], at)).at(EPOCH) == ()
