"""The regulator's allow-list as the worker applies it: pure.

An entry names an IMSI or a holder (holder_ref), the reason codes it covers
(all when none is named) and an expiry. While it is in force the covered
codes are left out of the SIM's case, whatever the evidence; at the expiry
(the worker's clock) the SIM is looked at again and a reason that still holds
is raised. Adding or removing an entry sends the SIMs it names a recheck, so
their cases follow at once rather than at their next event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from simguard.store.allow_list import InForce
from simguard.timefmt import from_text
from workers.state import Reason


@dataclass(frozen=True)
class Allowance:
    """What the entries in force for one SIM allow: codes (None: all) and until when."""

    codes: frozenset[str] | None
    until: datetime

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


def allowance(entries: Iterable[InForce], names: Iterable[str]) -> Allowance | None:
    """The combined allowance of the entries for any of `names` (the SIM's
    IMSI and holder ref); None when none is in force. Several entries cover
    the union of their codes until the earliest expiry, when the SIM is
    looked at again."""
    wanted = set(names)
    matching = [entry for entry in entries if entry[0] in wanted]
    if not matching:
        return None
    codes: set[str] = set()
    every_code = False
    for _, listed, _ in matching:
        if listed:
            codes.update(listed.split(","))
        else:
            every_code = True
    until = min(from_text(expires_at) for _, _, expires_at in matching)
    return Allowance(None if every_code else frozenset(codes), until)


def without_allowed(reasons: Mapping[str, Reason], allowed: Allowance | None) -> dict[str, Reason]:
    if allowed is None:
        return dict(reasons)
    return {code: reason for code, reason in reasons.items() if not allowed.covers(code)}
