"""The `simguard` command. Subcommands import their module lazily so that
`simguard broker status` does not pay for Flask, and `simguard api` not for
the worker's rules."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from simguard.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from simguard.api_keys import ApiKey


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


# Commands that drive simguard from outside (tooling/, bench/), as "module:attribute".
# They are imported only when one is run or listed, so `simguard api` and
# `simguard worker` never load them, and an installation without bench/ (the
# image) still starts.
OUTSIDE_COMMANDS = {
    "bench": "bench.command:bench",
    "simulate": "tooling.simulator.command:simulate",
    "soak": "tooling.soak:soak",
}


class _MainGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *OUTSIDE_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in OUTSIDE_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = OUTSIDE_COMMANDS[cmd_name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0]:
                raise
            return None  # its package is not installed here
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=_MainGroup)
@click.version_option(package_name="simguard")
def main() -> None:
    """SIM registration verification: ingest, verify, flag for the regulator."""


# --- config -------------------------------------------------------------------
@main.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("check")
def config_check() -> None:
    """Validate the configuration and print it with secrets masked."""
    settings = _settings()
    click.echo(json.dumps(settings.masked(), indent=2, sort_keys=True, default=str))
    if not settings.hmac_secret:
        click.echo(
            "warning: no HMAC secret set (SIMGUARD_HMAC_SECRET or hmac_secret_file)", err=True
        )
    if not settings.attestation_secret:
        click.echo(
            "warning: no attestation secret set "
            "(SIMGUARD_ATTESTATION_SECRET or attestation_secret_file)",
            err=True,
        )


# --- broker -------------------------------------------------------------------
@main.group()
def broker() -> None:
    """Run a local single-node Kafka (KRaft) broker."""


@broker.command("start")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("var/kafka"))
@click.option("--port", type=int, default=9092)
@click.option(
    "--plaintext",
    is_flag=True,
    help="No TLS, no authentication, no ACLs: a loopback broker for development only.",
)
def broker_start(data_dir: Path, port: int, plaintext: bool) -> None:
    """Format storage if needed, start the node, wait for it, create the topics.

    Secured unless --plaintext: TLS on every listener, SCRAM-SHA-512 logins,
    ACLs enforced; simguard's own user and its ACLs are created, and the
    settings its API and workers need are printed."""
    from simguard import broker as local_broker
    from simguard.broker_config import BrokerError
    from simguard.broker_security import BrokerSecurity
    from simguard.kafka_clients import ensure_topics

    settings = _settings().replace(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    security = None if plaintext else BrokerSecurity.create(data_dir / "security")
    try:
        node = local_broker.start_single_node(data_dir, port=port, security=security)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    if security is None:
        ensure_topics(settings)
        click.echo(f"broker running on {node.bootstrap} (pid {node.pid}, data {data_dir})")
        return
    from simguard.kafka_acls import secure_for_simguard

    secure_for_simguard(settings, security)
    click.echo(
        f"broker running on {node.bootstrap} (pid {node.pid}, data {data_dir}), SASL_SSL: "
        "TLS, SCRAM-SHA-512 logins, ACLs enforced\nsimguard's API and workers connect with:"
    )
    service = security.service_settings()
    for key in ("kafka_security_protocol", "kafka_ssl_cafile", "kafka_sasl_username"):
        click.echo(f"  export SIMGUARD_{key.upper()}={service[key]}")
    click.echo(f"  export SIMGUARD_KAFKA_SASL_PASSWORD_FILE={security.service_password_file}")


@broker.command("stop")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("var/kafka"))
def broker_stop(data_dir: Path) -> None:
    """Stop the local broker started from DATA_DIR."""
    from simguard import broker as local_broker

    stopped = local_broker.stop_node(data_dir)
    click.echo("broker stopped" if stopped else "no broker running")


@broker.command("status")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("var/kafka"))
def broker_status(data_dir: Path) -> None:
    """Say whether the local broker runs and answers."""
    from simguard import broker as local_broker

    status = local_broker.node_status(data_dir)
    click.echo(status)
    if not status.startswith("running"):
        sys.exit(1)


# --- topics ---------------------------------------------------------------------
@main.group()
def topics() -> None:
    """simguard's Kafka topics."""


@topics.command("ensure")
@click.option("--partitions", type=int, default=None, help="Default: topic_partitions.")
@click.option(
    "--acls", "with_acls", is_flag=True, help="Also create the ACLs (run as the broker's admin)."
)
@click.option("--service-principal", default="simguard", help="simguard's own Kafka user.")
@click.option(
    "--operator-principal",
    multiple=True,
    help="An operator's Kafka user, NAME or NAME=PLMN,PLMN to let it read those PLMN ids' "
    "notice topics (repeat).",
)
@click.option("--regulator-principal", multiple=True, help="A regulator's Kafka user (repeat).")
def topics_ensure(
    partitions: int | None,
    with_acls: bool,
    service_principal: str,
    operator_principal: tuple[str, ...],
    regulator_principal: tuple[str, ...],
) -> None:
    """Create the topics that are missing (the regulator topic compacted) and,
    with --acls, the ACLs: operators write the input topics only, regulators
    read the regulator topic only, simguard's principal does the rest."""
    from simguard.kafka_clients import ensure_topics

    settings = _settings()
    if (operator_principal or regulator_principal) and not with_acls:
        raise click.UsageError("--operator-principal and --regulator-principal need --acls")
    ensure_topics(settings, partitions)
    click.echo(f"topics ready: {', '.join(settings.topics().values())}")
    if with_acls:
        from simguard.kafka_acls import Principals, apply_acls

        principals = Principals(service_principal, operator_principal, regulator_principal)
        count = apply_acls(settings, principals)
        click.echo(
            f"ACLs ready: {count} for {principals.service}, "
            f"{len(principals.operators)} operator(s), {len(principals.regulators)} regulator(s)"
        )


@main.group("tls")
def tls_group() -> None:
    """Certificates for a deployment's Kafka (one that has no PKI of its own)."""


@tls_group.command("make-pki")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--host", "hosts", multiple=True, required=True, help="A name the brokers answer to (repeat)."
)
def tls_make_pki(out: Path, hosts: tuple[str, ...]) -> None:
    """A CA, a broker certificate for HOSTs (server and client, for the
    controller's mTLS) and the admin's client certificate, as PEM files."""
    from simguard import tls
    from simguard.broker_security import ADMIN_USER, BROKER_COMMON_NAME

    if (out / "ca.pem").exists():
        click.echo(f"{out} already holds a PKI; left as it is")
        return
    ca = tls.make_ca("simguard Kafka CA")
    broker_certificate = tls.issue(ca, BROKER_COMMON_NAME, hosts)
    admin_certificate = tls.issue(ca, ADMIN_USER, ())
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_bytes(ca.certificate)
    tls.write_private(out / "ca-key.pem", ca.key)
    chain = broker_certificate.certificate + ca.certificate
    tls.write_private(out / "broker.pem", broker_certificate.key + chain)
    (out / "admin.pem").write_bytes(admin_certificate.certificate)
    tls.write_private(out / "admin-key.pem", admin_certificate.key)
    admin_keystore = admin_certificate.key + admin_certificate.certificate
    tls.write_private(out / "admin-keystore.pem", admin_keystore)
    click.echo(f"PKI written to {out}: ca.pem, broker.pem, admin.pem (CN={ADMIN_USER})")


@main.group("kafka-user")
def kafka_user() -> None:
    """Kafka SCRAM users (run as the broker's admin)."""


@kafka_user.command("set")
@click.argument("name")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A file holding the user's password (a mounted secret).",
)
def kafka_user_set(name: str, password_file: Path) -> None:
    """Create or change the SCRAM user NAME with the password in the file."""
    from simguard.kafka_acls import set_scram_users

    password = password_file.read_text().strip()
    if len(password) < 16:
        raise click.UsageError("a Kafka password needs at least 16 characters")
    set_scram_users(_settings(), [(name, password)])
    click.echo(f"SCRAM user {name} set")


# --- api ------------------------------------------------------------------------
@main.command()
@click.option("--bind", default="127.0.0.1:8080")
@click.option("--workers", type=int, default=2)
def api(bind: str, workers: int) -> None:
    """Run the HTTP API under gunicorn."""
    from service.serve import run_gunicorn

    run_gunicorn(bind=bind, workers=workers)


# --- worker ---------------------------------------------------------------------
@main.command()
@click.option("--name", default=None, help="Worker name for metrics and transactional id.")
@click.option("--metrics-port", type=int, default=None)
def worker(name: str | None, metrics_port: int | None) -> None:
    """Consume the input topics and keep the regulator's register."""
    from workers.main import run_worker

    settings = _settings()
    if metrics_port is not None:
        settings = settings.replace(worker_metrics_port=metrics_port)
    sys.exit(run_worker(settings, name=name))


# --- keys -----------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Manage operators' API keys (only hashes are stored)."""


@keys.command("create")
@click.option("--operator", default=None, help="The operator's home PLMN id (MCC+MNC).")
@click.option(
    "--regulator",
    default=None,
    help="Instead of --operator: a regulator's name (e.g. nbtc); its key reads any SIM "
    "and sends nothing.",
)
@click.option("--plmn", multiple=True, help="Further PLMN ids this key may send for.")
@click.option(
    "--expires-in",
    "expires_in",
    default=None,
    help="Lifetime, e.g. 90d, 12h or 30m; the key is refused after it. Default: none.",
)
def keys_create(
    operator: str | None, regulator: str | None, plmn: tuple[str, ...], expires_in: str | None
) -> None:
    """Create a key; it is printed once and never stored in the clear."""
    from simguard.api_keys import create_key, create_regulator_key, parse_lifetime

    if (operator is None) == (regulator is None):
        raise click.UsageError("give one of --operator and --regulator")
    if regulator is not None and plmn:
        raise click.UsageError("a regulator key reads any SIM: --plmn does not apply")
    try:
        lifetime = None if expires_in is None else parse_lifetime(expires_in)
        if regulator is not None:
            key_id, secret = create_regulator_key(_settings(), regulator, lifetime)
        else:
            assert operator is not None
            key_id, secret = create_key(_settings(), operator, list(plmn), lifetime)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key id: {key_id}\nAPI key (shown once): {secret}")


@keys.command("list")
def keys_list() -> None:
    """List keys (ids, operators, PLMNs, state), never the secrets."""
    from simguard.api_keys import list_keys

    for row in list_keys(_settings()):
        click.echo(
            f"{row.key_id}  {row.role}={row.operator}  plmns={','.join(row.plmns) or '-'}  "
            f"created={row.created_at}  expires={row.expires_at or 'never'}  "
            f"{_key_state(row)}"
        )


@keys.command("kafka-signing-key")
@click.option("--plmn", required=True, help="The operator's PLMN id (MCC+MNC).")
def keys_kafka_signing_key(plmn: str) -> None:
    """Print the key an operator signs its records with when it produces
    straight to Kafka (derived from operator_signing_secret; hex)."""
    from schemas.identifiers import is_valid_plmn
    from schemas.operator_signature import HEADER, operator_key

    settings = _settings()
    if not settings.operator_signing_secret:
        raise click.ClickException(
            "operator_signing_secret is not set "
            "(SIMGUARD_OPERATOR_SIGNING_SECRET or operator_signing_secret_file)"
        )
    if not is_valid_plmn(plmn):
        raise click.ClickException(f"{plmn!r} is not a PLMN id (MCC and MNC, 5 or 6 digits)")
    click.echo(f"record-signing key for PLMN {plmn} (header {HEADER}):")
    click.echo(operator_key(settings.operator_signing_secret, plmn).hex())


def _key_state(row: ApiKey) -> str:
    if row.revoked_at:
        return "revoked"
    return "expired" if row.expired(datetime.now(UTC)) else "active"


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    from simguard.api_keys import revoke_key

    if not revoke_key(_settings(), key_id):
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}")


# --- registry ---------------------------------------------------------------------
@main.group()
def registry() -> None:
    """The registration registry."""


@registry.command("import")
@click.argument("csv_file", type=click.Path(exists=True, path_type=Path))
def registry_import(csv_file: Path) -> None:
    """Bulk-load an operator's existing registrations (holder IDs pseudonymised)."""
    from registry_import.csv_import import import_csv

    try:
        summary = import_csv(_settings(), csv_file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary.describe())
    if summary.rejected and not summary.imported:
        sys.exit(1)


# --- allow-list -------------------------------------------------------------------
@main.group("allow-list")
def allow_list_group() -> None:
    """The regulator's allow-list of IMSIs and holders (also over HTTP)."""


@allow_list_group.command("load")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def allow_list_load(csv_file: Path) -> None:
    """Add the entries of a CSV file: columns imsi, id_type, id_number,
    nationality, codes (';'-separated, empty for all), expires_at, note; a
    row names an imsi or a holder's document. Nothing is stored if a row is
    invalid; each SIM named is sent a recheck."""
    from simguard.allow_list_file import load_file

    try:
        added, rechecked = load_file(_settings(), csv_file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{added} entries added; {rechecked} SIMs sent a recheck")


# --- reports ----------------------------------------------------------------------
@main.group()
def report() -> None:
    """Reports for the regulator, from the store."""


@report.command("compliance")
@click.option(
    "--since", default="7d", show_default=True, help="Notices issued this long ago: 7d, 12h, 30m."
)
@click.option(
    "--format", "output", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
def report_compliance(since: str, output: str) -> None:
    """Per operator: notices issued, actioned on time or late, overdue, open, withdrawn."""
    from simguard.api_keys import parse_lifetime
    from simguard.compliance_report import as_csv, as_table, compliance
    from simguard.store import open_store

    try:
        period = parse_lifetime(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    store = open_store(_settings().database_url)
    try:
        lines = compliance(store, datetime.now(UTC) - period)
    finally:
        store.close()
    click.echo(as_csv(lines) if output == "csv" else as_table(lines), nl=output != "csv")


@report.command("abnormal-usage")
@click.option(
    "--week",
    default=None,
    help="ISO week, e.g. 2026-W49 (UTC days, Monday to Sunday); default: last week.",
)
@click.option(
    "--format", "output", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
def report_abnormal_usage(week: str | None, output: str) -> None:
    """Per operator, the SIMs with abnormal use in a week: days over the call limit, static days."""
    from simguard.store import open_store
    from simguard.usage_report import abnormal_usage_report, as_csv, as_table, last_week

    settings = _settings()
    chosen = week or last_week(datetime.now(UTC).date())
    store = open_store(settings.database_url)
    try:
        lines = abnormal_usage_report(store, chosen, settings.rules)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from exc
    finally:
        store.close()
    click.echo(as_csv(lines) if output == "csv" else as_table(lines), nl=output != "csv")


# --- demo -------------------------------------------------------------------------
@main.command()
@click.option("--keep-running", is_flag=True, help="Leave broker, API and worker running.")
def demo(keep_running: bool) -> None:
    """Start everything on embedded defaults, send sample events, show the flags."""
    from tooling.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


if __name__ == "__main__":
    main()
