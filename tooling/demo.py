"""`simguard demo`: the whole loop on one machine with embedded defaults.

Starts a local Kafka broker, the API under gunicorn and a worker, creates
operators' API keys, shows how bad input is refused, posts a realistic
population of events from the simulator, waits for the (shortened)
UNREGISTERED grace, prints the regulator's register, shows the enforcement
loop (notices, operators acting or not, a dismissal, a case flagged again on
new evidence, the compliance report) and the metrics.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from simguard.api_keys import issue_key, issue_regulator_key
from simguard.broker import free_port, start_single_node
from simguard.broker_security import BrokerSecurity
from simguard.kafka_acls import Principals, secure_for_simguard, set_scram_users
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings, load_settings, settings_to_env
from simguard.store import Store, open_store

DEMO_DIR = Path("var/demo")
# Short enough that the demo finishes in about a minute; production uses 15 min.
DEMO_GRACE_SECONDS = 20
DEMO_SIMS = 400
# Notices are due in 90 s here, 24 h in production: the demo shows one go overdue.
DEMO_NOTICE_DEADLINE_SECONDS = 90
# The regulator's Kafka user: it may read the regulator topic and nothing else.
DEMO_REGULATOR = "regulator-demo"


def run_demo(keep_running: bool = False, sims: int = DEMO_SIMS) -> int:
    from tooling.simulator.check import check
    from tooling.simulator.files import write
    from tooling.simulator.population import generate
    from tooling.simulator.post import post

    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    _say("1/7", "starting a local Kafka broker (KRaft, one node; TLS, SCRAM logins, ACLs)")
    kafka_port = 9092 if _port_free(9092) else free_port()
    security = BrokerSecurity.create(DEMO_DIR / "kafka-security")
    node = start_single_node(DEMO_DIR / "kafka", port=kafka_port, security=security)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        base = load_settings(environ={"SIMGUARD_CONFIG": str(_empty_config())})
        now = datetime.now(UTC)
        scenario = generate(sims, seed=7, now=now, rules=base.rules)
        write(scenario, DEMO_DIR / "scenario")
        plain = base.replace(
            kafka_bootstrap_servers=node.bootstrap,
            database_url=f"sqlite:///{DEMO_DIR / 'simguard.db'}",
            hmac_secret=secrets.token_hex(32),
            attestation_secret=secrets.token_hex(32),
            operator_signing_secret=secrets.token_hex(32),
            rules=_demo_rules(base, DEMO_DIR / "scenario" / "border_cells.csv"),
        )
        settings = secure_for_simguard(plain, security, Principals(regulators=(DEMO_REGULATOR,)))
        regulator_password = secrets.token_hex(24)
        admin = plain.replace(**security.admin_settings())
        set_scram_users(admin, [(DEMO_REGULATOR, regulator_password)])
        regulator = plain.replace(**security.user_settings(DEMO_REGULATOR, regulator_password))
        click.echo(
            f"    {node.bootstrap} SASL_SSL; users: simguard (API and worker), "
            f"{DEMO_REGULATOR} (reads the regulator topic only)"
        )
        api_port = 8080 if _port_free(8080) else free_port()
        worker_port = 9464 if _port_free(9464) else free_port()
        env = dict(os.environ) | settings_to_env(settings)
        env["SIMGUARD_CONFIG"] = str(_empty_config())
        env["SIMGUARD_WORKER_METRICS_PORT"] = str(worker_port)
        api_url = f"http://127.0.0.1:{api_port}"

        _say("2/7", f"starting the API (gunicorn) on {api_url} and a worker")
        processes.append(
            _spawn(["api", "--bind", f"127.0.0.1:{api_port}", "--workers", "2"], env, "api")
        )
        processes.append(_spawn(["worker", "--name", "demo-worker"], env, "worker"))
        _wait_http(f"{api_url}/readyz", 60)
        _wait_http(f"http://127.0.0.1:{worker_port}/healthz", 60)

        _say("3/7", "creating one API key per operator (only hashes are stored)")
        store = open_store(settings.database_url)
        keys = {op: issue_key(store, op)[1] for op in scenario.operators}
        for operator in scenario.operators:
            click.echo(f"    operator {operator}: key sg_…{keys[operator][-6:]}")

        _say("4/7", "bad input is refused whole, with RFC 9457 problem+json")
        _show_refusals(api_url, scenario.events, keys)
        _show_kafka_refusal(regulator)

        counts = {kind: len(events) for kind, events in scenario.events.items()}
        _say("5/7", f"posting {sum(counts.values())} events for {sims} SIMs: {counts}")
        report = post(scenario, api_url, keys)
        for kind, sent in report.kinds.items():
            click.echo(
                f"    {kind}: {sent.accepted}/{sent.sent} accepted (202) in {sent.requests} "
                f"requests, {sent.seconds:.2f} s"
            )
        click.echo(f"    waiting {DEMO_GRACE_SECONDS}s grace for UNREGISTERED deadlines …")
        time.sleep(DEMO_GRACE_SECONDS + 5)

        _say("6/7", "the regulator's register (regulator.flagged-sims.v1, latest per IMSI)")
        result = check(regulator, scenario.truth, timeout=60)
        click.echo(_register_table(regulator, limit=25))
        click.echo("\nagainst the simulator's ground truth:")
        click.echo(result.table())
        _show_abnormal_usage(store, settings, now)
        _say("7/7", "the enforcement loop: notices, operators acting, decisions, compliance")
        from tooling import enforcement_demo

        enforcement_demo.show(
            enforcement_demo.Demo(
                api_url=api_url,
                keys=keys,
                regulator_key=issue_regulator_key(store, "nbtc")[1],
                store=store,
                post=_post,
                events=scenario.events,
                deadline_seconds=DEMO_NOTICE_DEADLINE_SECONDS,
                grace_seconds=DEMO_GRACE_SECONDS,
            )
        )
        _show_metrics(api_url, worker_port)
        if keep_running:
            click.echo(
                f"\nleft running: API {api_url}, worker metrics :{worker_port}, broker "
                f"{node.bootstrap}. Stop with: kill {' '.join(str(p.pid) for p in processes)}; "
                f"simguard broker stop --data-dir {DEMO_DIR / 'kafka'}"
            )
            return 0
        return 0 if result.perfect else 1
    finally:
        if not keep_running:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
            node.stop()


def _demo_rules(base: Settings, border_cells_csv: Path) -> Any:
    import dataclasses

    from simguard.settings import _read_border_cells

    return dataclasses.replace(
        base.rules,
        unregistered_grace_seconds=DEMO_GRACE_SECONDS,
        notice_deadline_hours=DEMO_NOTICE_DEADLINE_SECONDS / 3600,
        notice_deadline_hours_by_reason={},
        border_cells_csv=str(border_cells_csv),
        border_cells=_read_border_cells(str(border_cells_csv)),
    )


def _show_refusals(
    api_url: str, events: dict[str, list[dict[str, Any]]], keys: dict[str, str]
) -> None:
    operator, key = next(iter(keys.items()))
    good = next(e for e in events["activations"] if e["operator"] == operator)
    bad_iccid = dict(good, iccid="8966000000000000001")
    other = next(op for op in keys if op != operator)
    foreign = next(e for e in events["activations"] if e["operator"] == other)
    cases = [
        ("a batch with one bad ICCID", {"events": [good, bad_iccid]}, key),
        ("an event for another operator's PLMN", foreign, key),
        ("no API key", good, ""),
    ]
    for label, body, bearer in cases:
        status, answer = _post(f"{api_url}/v1/activations", body, bearer)
        click.echo(f"    {label}: HTTP {status} {answer.get('code')} {answer.get('errors', '')}")


def _show_kafka_refusal(regulator: Settings) -> None:
    """A forged "cleared" record from a principal that may only read."""
    from kafka.errors import KafkaError

    forged = orjson.dumps({"imsi": "520010000000001", "status": "cleared", "reasons": []})
    producer = reliable_producer(regulator, enable_idempotence=False, max_block_ms=10_000)
    try:
        producer.send(regulator.topic_flagged, key=b"520010000000001", value=forged).get(15)
        outcome = "ACCEPTED (the ACLs are missing!)"
    except KafkaError as error:
        outcome = f"refused by the broker: {type(error).__name__}"
    finally:
        producer.close(timeout=5)
    click.echo(f"    {DEMO_REGULATOR} writing a forged 'cleared' record to Kafka: {outcome}")


def _register_table(settings: Settings, limit: int) -> str:
    from tooling.simulator.check import RegisterReader

    reader = RegisterReader(settings)
    try:
        while reader.poll() or not reader.caught_up():
            pass
        flagged = [r for r in reader.latest.values() if r["status"] == "flagged"]
    finally:
        reader.close()
    flagged.sort(key=lambda r: (-r["risk_score"], r["imsi"]))
    lines = [
        f"    {len(flagged)} SIMs flagged (highest risk first, {min(limit, len(flagged))} shown)",
        f"    {'IMSI':<16} {'operator':<8} {'risk':>4} {'v':>2}  reasons",
    ]
    for record in flagged[:limit]:
        codes = ", ".join(r["code"] for r in record["reasons"])
        lines.append(
            f"    {record['imsi']:<16} {record['operator']:<8} {record['risk_score']:>4} "
            f"{record['version']:>2}  {codes}"
        )
    return "\n".join(lines)


def _show_abnormal_usage(store: Store, settings: Settings, now: datetime) -> None:
    """NBTC's weekly list, for the week of yesterday's usage reports."""
    from simguard.usage_report import abnormal_usage_report, as_table, week_of

    week = week_of((now - timedelta(days=1)).date())
    lines = abnormal_usage_report(store, week, settings.rules)
    click.echo(
        f"\nsimguard report abnormal-usage --week {week}: {len(lines)} SIMs with abnormal days "
        "(SIM boxes and farms; heavy but legitimate callers stay off it)"
    )
    for line in as_table(lines[:12]).splitlines():
        click.echo(f"    {line}")


def _show_metrics(api_url: str, worker_port: int) -> None:
    click.echo("\nmetrics (Prometheus exposition):")
    click.echo(f"    API:    {api_url}/metrics")
    click.echo(f"    worker: http://127.0.0.1:{worker_port}/metrics")
    click.echo("    scrape config, alerts and dashboard: deploy/prometheus/, deploy/grafana/")
    # Each process exports what it counts: ingest in the API, verdicts in the worker.
    wanted = {
        f"{api_url}/metrics": ("simguard_events_accepted_total",),
        f"http://127.0.0.1:{worker_port}/metrics": (
            "simguard_flags_total",
            "simguard_cases_flagged",
            "simguard_dead_letters_total",
            "simguard_notices_pending",
            "simguard_notice_time_to_action_seconds_count",
            "simguard_case_decisions_total",
        ),
    }
    for url, prefixes in wanted.items():
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            if line.startswith(prefixes):
                click.echo(f"    {line}")


def _post(url: str, body: Any, bearer: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=orjson.dumps(body), method="POST")
    request.add_header("Content-Type", "application/json")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"{}")


def _spawn(args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = (DEMO_DIR / f"{name}.log").open("ab")
    executable = str(Path(sys.executable).with_name("simguard"))
    return subprocess.Popen([executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise click.ClickException(f"{url} did not answer; see the logs in {DEMO_DIR}")
        time.sleep(0.3)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _empty_config() -> Path:
    path = DEMO_DIR / "empty.toml"
    path.touch()
    return path


def _say(step: str, text: str) -> None:
    click.secho(f"\n[{step}] {text}", bold=True)


__all__ = ["run_demo"]
