"""The demo's last act: what follows a flag. Operators read their notices over
HTTP; all but one suspend or re-verify their SIMs in time, the last lets its
notices go overdue; the regulator dismisses one case, which its evidence does
not raise again, and another that new evidence flags again; then the
compliance report."""

from __future__ import annotations

import random
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson

from simguard.compliance_report import as_table, compliance
from simguard.store import Store
from tooling.simulator.identities import Identities

Post = Callable[[str, Any, str], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Demo:
    api_url: str
    keys: Mapping[str, str]
    regulator_key: str
    store: Store
    post: Post
    events: Mapping[str, list[dict[str, Any]]]
    deadline_seconds: float
    grace_seconds: float


def show(demo: Demo) -> None:
    notices = _latest_notices(demo)
    operators = sorted(demo.keys)
    late = operators[-1]
    for operator in operators:
        mine = [n for n in notices.values() if n["operator"] == operator]
        actions = {a: sum(1 for n in mine if n["action"] == a) for a in ("suspend", "reverify")}
        click.echo(f"    operator {operator}: {len(mine)} notices {actions}")
    waiting = [n for n in notices.values() if n["status"] == "open"]
    dismissed, reraised = _pick_for_decisions(demo, waiting)
    acting = [
        n for n in waiting if n["operator"] != late and n["imsi"] not in (dismissed, reraised)
    ]
    _act(demo, acting)
    click.echo(
        f"    {len(acting)} notices of {', '.join(o for o in operators if o != late)} acted on "
        f"(suspended or re-verified); {late} does nothing"
    )
    if dismissed is not None:
        _dismiss(demo, dismissed, "A border trader, verified in person.")
        _repeat_evidence(demo, dismissed)
    if reraised is not None:
        _dismiss(demo, reraised, "A delayed registration, accepted once.")
        _new_activation(demo, reraised)
    wait = max(demo.deadline_seconds, demo.grace_seconds) + 8
    click.echo(
        f"    waiting {wait:.0f} s for the notices' deadline and the new activation's grace …"
    )
    time.sleep(wait)
    for imsi, label in ((dismissed, "dismissed"), (reraised, "dismissed, then new evidence")):
        if imsi is not None:
            case = _case(demo, imsi)
            codes = ", ".join(r["code"] for r in case["reasons"]) or "-"
            click.echo(f"    {label}: {imsi} case v{case['version']} {case['status']} ({codes})")
    click.echo("\n    simguard report compliance --since 1d")
    lines = compliance(demo.store, datetime.now(UTC) - timedelta(days=1))
    click.echo("\n".join(f"    {line}" for line in as_table(lines).splitlines()))


def _latest_notices(demo: Demo) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for key in demo.keys.values():
        after = "0.0"
        while True:
            page = _get(demo, f"/v1/notices?after={after}&limit=1000", key)
            for notice in page["notices"]:
                latest[notice["imsi"]] = notice
            if page["next"] == after:
                break
            after = page["next"]
    return latest


def _pick_for_decisions(demo: Demo, notices: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """A roaming case to dismiss for good, and an unregistered one that a new
    activation flags again (their operators leave both alone)."""
    roaming = sorted(
        (n for n in notices if "HIGH_RISK_ROAMING" in n["reasons"]),
        key=lambda n: ("UNREGISTERED" in n["reasons"], n["imsi"]),
    )
    dismissed = roaming[0]["imsi"] if roaming else None
    unregistered = [
        n["imsi"] for n in notices if "UNREGISTERED" in n["reasons"] and n["imsi"] != dismissed
    ]
    return dismissed, (unregistered[0] if unregistered else None)


def _act(demo: Demo, notices: list[dict[str, Any]]) -> None:
    """Each notice's operator suspends the SIM or re-registers it to a verified holder."""
    registrations = {e["imsi"]: e for e in demo.events["registrations"]}
    activations = {e["imsi"]: e for e in demo.events["activations"]}
    identities = Identities(random.Random(2026))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    by_operator: dict[str, list[dict[str, Any]]] = {}
    for notice in notices:
        imsi = notice["imsi"]
        known = registrations.get(imsi) or activations.get(imsi)
        if known is None:
            continue
        holder = registrations[imsi]["holder"] if imsi in registrations else None
        event = {
            "event_id": str(uuid.uuid4()),
            "operator": notice["operator"],
            "imsi": imsi,
            "iccid": known["iccid"],
            "msisdn": known["msisdn"],
            "holder": holder or identities.thai_citizen().as_json(),
            "verification": "biometric",
            "registered_at": now,
            "status": "suspended" if notice["action"] == "suspend" else "active",
        }
        by_operator.setdefault(notice["operator"], []).append(event)
    for operator, events in by_operator.items():
        for start in range(0, len(events), 1000):
            status, answer = demo.post(
                f"{demo.api_url}/v1/registrations",
                {"events": events[start : start + 1000]},
                demo.keys[operator],
            )
            if status != 202:
                raise click.ClickException(f"operator {operator} could not act: {answer}")


def _dismiss(demo: Demo, imsi: str, reason: str) -> None:
    case = _case(demo, imsi)
    expires = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "action": "dismiss",
        "case_version": case["version"],
        "reason": reason,
        "expires_at": expires,
    }
    status, answer = demo.post(
        f"{demo.api_url}/v1/cases/{imsi}/decisions", body, demo.regulator_key
    )
    click.echo(
        f"    regulator dismisses {imsi} (v{case['version']}: "
        f"{', '.join(r['code'] for r in case['reasons'])}): HTTP {status} {answer.get('status')}"
    )
    for _ in range(50):
        if _case(demo, imsi)["version"] > case["version"]:
            return
        time.sleep(0.2)


def _repeat_evidence(demo: Demo, imsi: str) -> None:
    """One more sighting in the country the dismissed pattern is about."""
    seen = [e for e in demo.events["network_events"] if e["imsi"] == imsi]
    last = max(seen, key=lambda e: e["observed_at"])
    again = {**last, "event_id": str(uuid.uuid4())}
    demo.post(f"{demo.api_url}/v1/network-events", again, demo.keys[last["operator"]])
    click.echo(f"    {imsi} is seen again as before (the same pattern, no new occurrence)")


def _new_activation(demo: Demo, imsi: str) -> None:
    first = next(e for e in demo.events["activations"] if e["imsi"] == imsi)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    again = {**first, "event_id": str(uuid.uuid4()), "activated_at": now}
    demo.post(f"{demo.api_url}/v1/activations", again, demo.keys[first["operator"]])
    click.echo(f"    {imsi} is activated again, and still nobody registers it (new evidence)")


def _case(demo: Demo, imsi: str) -> dict[str, Any]:
    case: dict[str, Any] = _get(demo, f"/v1/sims/{imsi}", demo.regulator_key)["case"]
    return case


def _get(demo: Demo, path: str, key: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{demo.api_url}{path}")
    request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        body: dict[str, Any] = orjson.loads(answer.read())
    return body
