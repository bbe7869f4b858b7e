"""DEVICE_MANY_SIMS in the shared store: one handset (IMEI) seen with at least
`device_many_sims_min_imsis` distinct SIMs within `device_many_sims_window_days`
consecutive UTC days: a SIM box cycling through its SIMs, or a rack of a SIM
farm's modems. Every SIM seen in the handset within such a window carries it.

A handset's SIMs arrive on many partitions (records are keyed by IMSI), so
they meet in the `device_sims` table, one row per handset, UTC day and SIM,
and each handset is locked while a new row is added: N workers then agree on
every group, and each SIM of a group is marked by exactly one of them, which
returns it so that its owner is asked to re-check it, as for dealers' bursts
(workers/dealers.py). Which sightings form a group is decided by the same
pure function, with days for activation times
(`workers.rules.dealers.group_members`). A sighting of a SIM already recorded
for that handset and day costs one indexed read and no lock: a SIM box's
slot adds a row a day, however often its SIM is seen.

The answer is a function of the set of (handset, day, SIM) sightings, so it
does not depend on arrival order, and it only grows (history: never cleared,
a regulator's dismissal aside).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from simguard.store import Tx
from simguard.store import device_sims as rows
from workers.rules.dealers import DealerActivation, group_members, largest_group
from workers.rules.devices import device_of
from workers.rules.sightings import EPOCH, iso_date, to_micros, utc_day
from workers.state import Reason

DEVICE_MANY_SIMS = ReasonCode.DEVICE_MANY_SIMS.value


def device_lock(device: int) -> str:
    """The store lock that serialises work on one handset's SIMs across workers."""
    return f"simguard.device.{device}"


def _midnight(day: int) -> datetime:
    return EPOCH + timedelta(days=day)


def _width(rules: Rules) -> timedelta:
    return timedelta(days=rules.device_many_sims_window_days)


def record_sighting(tx: Tx, imsi: str, imei: str, at: datetime, rules: Rules) -> list[str]:
    """Store that the SIM was in the handset on `at`'s UTC day; return the SIMs
    that newly belong to a group of that handset. Idempotent."""
    device = device_of(imei)
    day = utc_day(to_micros(at))
    if rows.has(tx, device, day, imsi):
        return []
    tx.lock(device_lock(device))
    rows.add(tx, device, day, imsi)
    nearby = _sightings_around(tx, device, day, rules)
    members = group_members(*_around_day(nearby, day, rules))
    marked = {sighting for sighting, in_group in nearby if in_group}
    to_mark = [sighting for sighting in members if sighting not in marked]
    if not to_mark:
        return []
    candidates = sorted({sighting.imsi for sighting in to_mark})
    already = rows.sims_in_group(tx, device, candidates)
    rows.mark_in_group(tx, device, [(s.imsi, utc_day(to_micros(s.activated_at))) for s in to_mark])
    return [imsi for imsi in candidates if imsi not in already]


def group_reason(tx: Tx, imsi: str, rules: Rules) -> Reason | None:
    """The reason for a SIM marked as part of a handset's group (its earliest).

    `since` is the day the group reached its size, or the SIM's own day if later.
    The handset is not named: its IMEI identifies the device's owner too.
    """
    first = rows.first_in_group(tx, imsi)
    if first is None:
        return None
    device, day = first
    group = largest_group(*_around_day(_sightings_around(tx, device, day, rules), day, rules))
    if group is None:
        return None
    evidence = {
        "sims": group.sims,
        "first_day": iso_date(utc_day(to_micros(group.start))),
        "last_day": iso_date(utc_day(to_micros(group.end))),
        "window_days": rules.device_many_sims_window_days,
    }
    since = max(_midnight(day), group.completed_at(rules.device_many_sims_min_imsis))
    return Reason(DEVICE_MANY_SIMS, since, evidence)


def _around_day(
    nearby: list[tuple[DealerActivation, bool]], day: int, rules: Rules
) -> tuple[list[DealerActivation], datetime, int, timedelta]:
    """The arguments of the group functions for the groups containing `day`."""
    sightings = [sighting for sighting, _ in nearby]
    return sightings, _midnight(day), rules.device_many_sims_min_imsis, _width(rules)


def _sightings_around(
    tx: Tx, device: int, day: int, rules: Rules
) -> list[tuple[DealerActivation, bool]]:
    """The handset's sightings less than one window either side of `day`:
    every group containing `day` lies among them."""
    span = rules.device_many_sims_window_days - 1
    return [
        (DealerActivation(_midnight(seen_day), seen_imsi), in_group)
        for seen_imsi, seen_day, in_group in rows.between(tx, device, day - span, day + span)
    ]


def weights(rules: Rules) -> dict[str, int]:
    return {DEVICE_MANY_SIMS: rules.device_many_sims_weight}
