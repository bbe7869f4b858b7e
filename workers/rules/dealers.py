"""BULK_ACTIVATION_BURST, the pure part: which of a dealer's activations form a burst.

A burst is `bulk_activation_min_sims` or more distinct SIMs activated by one
dealer within `bulk_activation_window_minutes`, read the same way as
IMPOSSIBLE_TRAVEL's "less than 60 min": the last activation of the group is
less than 60 minutes after the first (50 SIMs spread over exactly 60 minutes
are not a burst, over 59 minutes 59 seconds they are). Every SIM in such a
group carries the reason. A SIM activated twice by the dealer counts once per
group; each of its activations may place it in a group.

The answer is a function of the dealer's set of activations, so it does not
depend on arrival order, and it only grows as activations arrive (history:
never cleared). The store keeps the activations and serialises each dealer
(workers/dealers.py); these functions decide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules

BULK_ACTIVATION_BURST = ReasonCode.BULK_ACTIVATION_BURST.value


@dataclass(frozen=True, slots=True, order=True)
class DealerActivation:
    activated_at: datetime
    imsi: str


@dataclass(frozen=True)
class Burst:
    """One group: a dealer's activations from `start` for less than the window."""

    activations: tuple[DealerActivation, ...]

    @property
    def start(self) -> datetime:
        return self.activations[0].activated_at

    @property
    def end(self) -> datetime:
        return self.activations[-1].activated_at

    @property
    def sims(self) -> int:
        return len({activation.imsi for activation in self.activations})

    def completed_at(self, min_sims: int) -> datetime:
        """When the group reached `min_sims` distinct SIMs."""
        seen: set[str] = set()
        for activation in self.activations:
            seen.add(activation.imsi)
            if len(seen) >= min_sims:
                return activation.activated_at
        return self.end


def window(rules: Rules) -> timedelta:
    return timedelta(minutes=rules.bulk_activation_window_minutes)


def _groups_containing(
    ordered: Sequence[DealerActivation], moment: datetime, min_sims: int, width: timedelta
) -> Iterator[tuple[int, int, int]]:
    """(start, end, distinct SIMs) of the bursts that contain an activation at `moment`.

    Each candidate group starts at an activation and takes every activation
    less than the window after it: any burst lies inside one of these.
    """
    per_sim: Counter[str] = Counter()
    end = 0
    for start, first in enumerate(ordered):
        while end < len(ordered) and ordered[end].activated_at - first.activated_at < width:
            per_sim[ordered[end].imsi] += 1
            end += 1
        contains_moment = first.activated_at <= moment < first.activated_at + width
        if contains_moment and len(per_sim) >= min_sims:
            yield start, end, len(per_sim)
        per_sim[first.imsi] -= 1
        if not per_sim[first.imsi]:
            del per_sim[first.imsi]


def burst_members(
    activations: Sequence[DealerActivation], moment: datetime, rules: Rules
) -> list[DealerActivation]:
    return group_members(activations, moment, rules.bulk_activation_min_sims, window(rules))


def largest_burst(
    activations: Sequence[DealerActivation], moment: datetime, rules: Rules
) -> Burst | None:
    return largest_group(activations, moment, rules.bulk_activation_min_sims, window(rules))


def group_members(
    activations: Sequence[DealerActivation], moment: datetime, min_sims: int, width: timedelta
) -> list[DealerActivation]:
    """Every activation in a group of at least `min_sims` distinct SIMs less
    than `width` apart that contains the activation at `moment`.

    DEVICE_MANY_SIMS (workers/device_groups.py) asks the same of a handset's
    SIMs, with days for activations.

    Those are the only bursts a new activation at `moment` can create; every
    other burst was found when the last of its activations to arrive was
    recorded. All of them contain `moment`, so together they cover one
    contiguous run of activations.
    """
    ordered = sorted(activations)
    ranges = list(_groups_containing(ordered, moment, min_sims, width))
    if not ranges:
        return []
    return ordered[min(start for start, _, _ in ranges) : max(end for _, end, _ in ranges)]


def largest_group(
    activations: Sequence[DealerActivation], moment: datetime, min_sims: int, width: timedelta
) -> Burst | None:
    """The group containing `moment` with the most SIMs (the earliest of equals): evidence."""
    ordered = sorted(activations)
    best: tuple[int, int, int] | None = None
    for start, end, sims in _groups_containing(ordered, moment, min_sims, width):
        if best is None or sims > best[2]:
            best = (start, end, sims)
    return Burst(tuple(ordered[best[0] : best[1]])) if best is not None else None


def weights(rules: Rules) -> dict[str, int]:
    return {BULK_ACTIVATION_BURST: rules.bulk_activation_weight}
