"""The behaviour rules (roaming, border dwell, travel) as the worker calls them.

Each function is pure over the SIM's `behaviour` part of its state: a
JSON-ready dict that starts as ``{}`` and in which every rule module owns its
own short keys (roaming: ``a``, ``f``, ``h``; border: ``b``; travel: ``t``,
``x``; devices: ``v``, ``w``; usage: ``u``). Every key is bounded by its rule's window, so
the state of an ordinary domestic SIM stays around 200 bytes however many
observations it has (see each module for its bound).

BULK_ACTIVATION_BURST and DEVICE_MANY_SIMS span SIMs and live in the shared
store (workers/dealers.py, workers/device_groups.py); only their weights are
given here, with the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from simguard.settings import Rules
from workers import device_groups
from workers.rules import border, dealers, devices, roaming, travel, usage
from workers.rules.sightings import Sighting, sighting, to_micros
from workers.state import Reason


class ObservationRule(Protocol):
    """What each per-SIM rule module provides."""

    def observe(self, state: dict[str, Any], seen: Sighting, rules: Rules) -> dict[str, Any]: ...

    def active_reasons(
        self, state: dict[str, Any], now: datetime, rules: Rules
    ) -> dict[str, Reason]: ...

    def next_wakeup(
        self, state: dict[str, Any], now: datetime, rules: Rules
    ) -> datetime | None: ...


# Every observation goes through each of these, in any order: they own
# disjoint keys and read nothing of each other's. An observation whose network
# belongs to no country goes through none (see `sightings.sighting`).
OBSERVATION_RULES: tuple[ObservationRule, ...] = (roaming, border, travel, devices)


class StateRule(Protocol):
    """What every rule over the behaviour state answers, whatever feeds it."""

    def active_reasons(
        self, state: dict[str, Any], now: datetime, rules: Rules
    ) -> dict[str, Reason]: ...

    def next_wakeup(
        self, state: dict[str, Any], now: datetime, rules: Rules
    ) -> datetime | None: ...


# The observation rules and the usage rules (fed by daily usage reports).
STATE_RULES: tuple[StateRule, ...] = (*OBSERVATION_RULES, usage)


def apply_activation(state: dict[str, Any], event: dict[str, Any], rules: Rules) -> dict[str, Any]:
    state = roaming.apply_activation(state, event, rules)
    imei = event.get("imei")
    if imei:
        state = devices.observe_device(state, to_micros(event["activated_at"]), str(imei), rules)
    return state


def apply_observation(state: dict[str, Any], event: dict[str, Any], rules: Rules) -> dict[str, Any]:
    seen = sighting(event)
    if seen is None:
        return state
    for rule in OBSERVATION_RULES:
        state = rule.observe(state, seen, rules)
    return state


def apply_usage(state: dict[str, Any], event: dict[str, Any], rules: Rules) -> dict[str, Any]:
    return usage.apply_usage(state, event, rules)


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    """The behaviour reasons that hold at `now` (the worker's clock)."""
    reasons: dict[str, Reason] = {}
    for rule in STATE_RULES:
        reasons.update(rule.active_reasons(state, now, rules))
    return reasons


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """The earliest time after `now` at which `active_reasons` may change without
    a new event, or None when only a new event can change it."""
    wakeups = [
        wakeup
        for rule in STATE_RULES
        if (wakeup := rule.next_wakeup(state, now, rules)) is not None
    ]
    return min(wakeups, default=None)


def weights(rules: Rules) -> dict[str, int]:
    return {
        **roaming.weights(rules),
        **border.weights(rules),
        **travel.weights(rules),
        **devices.weights(rules),
        **dealers.weights(rules),
        **device_groups.weights(rules),
        **usage.weights(rules),
    }
