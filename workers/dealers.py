"""BULK_ACTIVATION_BURST in the shared store: a dealer's activations, seen by every worker.

A dealer's activations arrive on many partitions (they are keyed by IMSI), so
they meet in the `dealer_activations` table, and each dealer is locked while
one of its activations is recorded: N workers then agree on every burst, and
each SIM of a burst is marked (`in_burst`) by exactly one of them, which
returns it once so that its owner is asked to re-check it. Which activations
form a burst is decided by workers/rules/dealers.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simguard.settings import Rules
from simguard.store import Tx
from simguard.store import dealer_activations as rows
from simguard.timefmt import from_text, to_text
from workers.rules.dealers import (
    BULK_ACTIVATION_BURST,
    DealerActivation,
    burst_members,
    largest_burst,
    window,
)
from workers.state import Reason

# SQL `IN (...)` lists stay well below SQLite's and PostgreSQL's parameter limits.


def dealer_key(operator: str, dealer_id: str) -> str:
    return f"{operator}:{dealer_id}"


def dealer_lock(key: str) -> str:
    """The store lock that serialises work on one dealer's activations across workers."""
    return f"simguard.dealer.{key}"


def record_activation(tx: Tx, event: dict[str, Any], rules: Rules) -> list[str]:
    """Store the activation; return the SIMs that newly belong to a burst of its dealer.

    Idempotent: recording the same activation again stores and returns nothing new.
    """
    dealer_id = event.get("dealer_id")
    if not dealer_id:
        return []
    key = dealer_key(str(event["operator"]), str(dealer_id))
    tx.lock(dealer_lock(key))
    activated_at: datetime = event["activated_at"]
    rows.add(tx, key, str(event["imsi"]), to_text(activated_at))
    nearby = _activations_around(tx, key, activated_at, rules)
    members = burst_members([activation for activation, _ in nearby], activated_at, rules)
    marked = {activation for activation, in_burst in nearby if in_burst}
    to_mark = [activation for activation in members if activation not in marked]
    if not to_mark:
        return []
    candidates = sorted({activation.imsi for activation in to_mark})
    already = rows.sims_in_burst(tx, key, candidates)
    rows.mark_in_burst(tx, key, [(a.imsi, to_text(a.activated_at)) for a in to_mark])
    return [imsi for imsi in candidates if imsi not in already]


def burst_reason(tx: Tx, imsi: str, rules: Rules) -> Reason | None:
    """The reason for a SIM marked as part of a burst (its earliest one, if several).

    `since` is when the burst reached its size, or the SIM's own activation if later.
    """
    first = rows.first_in_burst(tx, imsi)
    if first is None:
        return None
    key, activated_text = first
    activated_at = from_text(activated_text)
    nearby = _activations_around(tx, key, activated_at, rules)
    burst = largest_burst([activation for activation, _ in nearby], activated_at, rules)
    if burst is None:
        return None
    operator, _, dealer_id = key.partition(":")
    evidence = {
        "operator": operator,
        "dealer_id": dealer_id,
        "activations": burst.sims,
        "window_start": to_text(burst.start),
        "window_end": to_text(burst.end),
        "window_minutes": rules.bulk_activation_window_minutes,
    }
    since = max(activated_at, burst.completed_at(rules.bulk_activation_min_sims))
    return Reason(BULK_ACTIVATION_BURST, since, evidence)


def _activations_around(
    tx: Tx, key: str, moment: datetime, rules: Rules
) -> list[tuple[DealerActivation, bool]]:
    """The dealer's activations less than one window either side of `moment`:
    every burst containing `moment` lies among them."""
    width = window(rules)
    return [
        (DealerActivation(from_text(activated), imsi), in_burst)
        for imsi, activated, in_burst in rows.between(
            tx, key, to_text(moment - width), to_text(moment + width)
        )
    ]
