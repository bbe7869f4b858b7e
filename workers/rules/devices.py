"""SIM_DEVICE_CYCLING: one SIM seen in at least `sim_device_cycling_min_imeis`
distinct devices (IMEIs) within `sim_device_cycling_window_hours`: a SIM moved
from handset to handset, as in a SIM box's slots or a mule's pass-around
phones. Vietnam re-verifies a SIM whose device changes; one change is ordinary
(a new phone), five in a day is not.

Pure functions over the SIM's behaviour state; this module owns two keys:

- ``"v"``: recent device sightings ``[at, device]`` (time in microseconds since
  the epoch; the device as the integer of the IMEI's first 14 digits, the check
  digit adding nothing), sorted. Per device and per bucket of the window only
  the earliest and the latest are kept, and only buckets from the window +
  `LATENESS_ALLOWANCE_US` before the latest sighting on.
- ``"w"``: the first window found, kept forever once found: the reason is
  history, and its sightings leave ``"v"`` within days.

Why thinning loses no device from any window: a window (s, s + W] holding a
sighting p of device d in bucket [B, B + W) also holds one of d's kept ends e
≤ p ≤ l of that bucket. If e > s, e is in it (e ≤ p ≤ s + W). Otherwise
B ≤ e ≤ s, so l < B + W ≤ s + W and l ≥ p > s. So every window counts the same
distinct devices among the kept sightings as among all of them, and the
window found is the earliest-ending one among the kept sightings, a function
of the set of sightings, whatever order they come in (within the lateness
allowance, as for IMPOSSIBLE_TRAVEL).

Bounds: at most 2 sightings per device per bucket over about three buckets: a
SIM that stays in one phone keeps 2 to 6 sightings, about 150 bytes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from simguard.timefmt import to_text
from workers.rules.registration import CurrentRegistration
from workers.rules.sightings import HOUR_US, Sighting, from_micros, utc_day
from workers.state import Reason

SIM_DEVICE_CYCLING = ReasonCode.SIM_DEVICE_CYCLING.value

RECENT_DEVICES = "v"
FOUND_WINDOW = "w"

# As for IMPOSSIBLE_TRAVEL: operators' feeds run minutes behind, retries an hour.
LATENESS_ALLOWANCE_US = HOUR_US
# A subscriber verified face to face (or by fingerprint) is who uses the SIM,
# whatever handset it is in: a call centre's hot desks, a courier's spare
# phones. Vietnam's answer to a device change is exactly that re-verification,
# so it also closes the `reverify` notice and clears the reason. e-KYC at a
# distance is what borrowed identities pass, so it does not count.
STRONG_VERIFICATIONS = frozenset({"biometric", "in_person"})

DeviceSighting = list[int]


def device_of(imei: str) -> int:
    return int(imei[:14])


def observe(state: dict[str, Any], seen: Sighting, rules: Rules) -> dict[str, Any]:
    if seen.imei is None:
        return state
    return observe_device(state, seen.at_us, seen.imei, rules)


def observe_device(state: dict[str, Any], at_us: int, imei: str, rules: Rules) -> dict[str, Any]:
    """A sighting of the SIM in the device `imei`: on the network, or at activation."""
    window_us = rules.sim_device_cycling_window_hours * HOUR_US
    sightings: list[DeviceSighting] = state.get(RECENT_DEVICES, [])
    latest_at = max(at_us, sightings[-1][0]) if sightings else at_us
    oldest_bucket = (latest_at - window_us - LATENESS_ALLOWANCE_US) // window_us
    bucket = at_us // window_us
    if bucket < oldest_bucket:
        return state
    new: DeviceSighting = [at_us, device_of(imei)]
    same: list[DeviceSighting] = [new]
    others: list[DeviceSighting] = []
    for held in sightings:
        held_bucket = held[0] // window_us
        if held_bucket < oldest_bucket:
            continue
        if held_bucket == bucket and held[1] == new[1]:
            same.append(held)
        else:
            others.append(held)
    earliest, latest = min(same), max(same)
    ends = [earliest] if earliest == latest else [earliest, latest]
    kept = sorted([*others, *ends])
    if kept == sightings:
        return state
    changed = {**state, RECENT_DEVICES: kept}
    if FOUND_WINDOW not in state:
        found = earliest_window(kept, window_us, rules.sim_device_cycling_min_imeis)
        if found is not None:
            changed[FOUND_WINDOW] = list(found)
    return changed


def seen_on_day(state: dict[str, Any], imei: str, day: int) -> bool:
    """Whether a remembered sighting has the SIM in this handset on this UTC
    day: then DEVICE_MANY_SIMS has that day's row already, and a repeat need
    not ask the store (workers/device_groups.py)."""
    device = device_of(imei)
    return any(
        held[1] == device and utc_day(held[0]) == day for held in state.get(RECENT_DEVICES, [])
    )


def earliest_window(
    sightings: list[DeviceSighting], window_us: int, min_devices: int
) -> tuple[int, int, int] | None:
    """(first, last, devices) of the earliest-ending window (last - W, last]
    with at least `min_devices` distinct devices, among time-sorted sightings."""
    in_window: Counter[int] = Counter()
    start = 0
    for end, (at_us, device) in enumerate(sightings):
        in_window[device] += 1
        while sightings[start][0] <= at_us - window_us:
            leaving = sightings[start][1]
            in_window[leaving] -= 1
            if not in_window[leaving]:
                del in_window[leaving]
            start += 1
        if len(in_window) >= min_devices:
            return sightings[start][0], sightings[end][0], len(in_window)
    return None


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    reason = device_cycling(state, rules)
    return {reason.code: reason} if reason is not None else {}


def device_cycling(state: dict[str, Any], rules: Rules) -> Reason | None:
    """History: once found, never cleared (a dismissal is the regulator's).

    The window named is the earliest among the remembered sightings while they
    are remembered (a function of the events), and the recorded one after.
    """
    window_us = rules.sim_device_cycling_window_hours * HOUR_US
    found = earliest_window(
        state.get(RECENT_DEVICES, []), window_us, rules.sim_device_cycling_min_imeis
    )
    if found is None:
        recorded = state.get(FOUND_WINDOW)
        if recorded is None:
            return None
        found = (recorded[0], recorded[1], recorded[2])
    first_us, last_us, devices = found
    # The devices are counted, not named: a case record goes to the regulator
    # and an IMEI identifies a handset's owner as well as the SIM's.
    evidence = {
        "devices": devices,
        "window_hours": rules.sim_device_cycling_window_hours,
        "first_seen_at": to_text(from_micros(first_us)),
        "last_seen_at": to_text(from_micros(last_us)),
    }
    return Reason(SIM_DEVICE_CYCLING, from_micros(last_us), evidence)


def verified_in_person(registration: CurrentRegistration | None) -> bool:
    """SIM_DEVICE_CYCLING does not hold while this is true (STRONG_VERIFICATIONS)."""
    return (
        registration is not None
        and registration.active
        and registration.verification in STRONG_VERIFICATIONS
    )


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """Never: the reason neither starts nor ends on the clock."""
    return None


def weights(rules: Rules) -> dict[str, int]:
    return {SIM_DEVICE_CYCLING: rules.sim_device_cycling_weight}
