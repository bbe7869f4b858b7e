"""Deterministic event workloads with the register they must produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import factories

OPERATOR = "52003"


@dataclass
class Workload:
    activations: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, set[str]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.activations) + len(self.registrations)


def registration_workload(sims: int, first_seed: int = 1) -> Workload:
    """Per 20 SIMs: 11 registered properly, 2 never registered (UNREGISTERED),
    7 registered to one holder (the last 2 are IDENTITY_OVER_LIMIT)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    workload = Workload()
    for seed in range(first_seed, first_seed + sims):
        slot = (seed - first_seed) % 20
        group = (seed - first_seed) // 20
        sim = {
            "operator": OPERATOR,
            "imsi": factories.imsi(OPERATOR, seed),
            "iccid": factories.iccid(seed),
            "msisdn": factories.msisdn(seed),
        }
        at = (start + timedelta(seconds=seed)).strftime("%Y-%m-%dT%H:%M:%SZ")
        workload.activations.append(factories.valid_activation(**sim, activated_at=at))
        if slot in (11, 12):
            workload.expected[sim["imsi"]] = {"UNREGISTERED"}
            continue
        shared = slot >= 13
        holder = 1_000_000 + group if shared else seed
        workload.registrations.append(
            factories.valid_registration_wire(
                **sim, registered_at=at, holder_ref=factories.holder_ref(holder)
            )
        )
        if slot >= 18:
            workload.expected[sim["imsi"]] = {"IDENTITY_OVER_LIMIT"}
    return workload
