"""Who may do what on simguard's topics: the ACL layout and SCRAM users.

Principals are Kafka users (`User:<name>`, the SCRAM user name):

- simguard's own principal (API and workers) reads and writes all its topics,
  creates them and reads their configs, uses the worker group and the
  workers' transactional ids;
- an operator principal may only write (and describe) the three input topics
  it produces events to, and read the notice topics of the PLMN ids it is
  given (`NAME=PLMN,PLMN`), in consumer groups named `<user>.<anything>`;
  never the recheck or decision topics, nothing else to read;
- a regulator principal may only read the regulator topic and the audit of
  its decisions, with consumer groups named `<user>.<anything>` (or none,
  assigning partitions itself); its decisions reach the workers through the
  API, never straight to Kafka.

No ACL means no access (`allow.everyone.if.no.acl.found=false`), so this list
is everything anyone but the super users may do. Creating ACLs needs ALTER on
the cluster: run it as the broker's admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
    UserScramCredentialUpsertion,
)

from simguard.broker_security import SERVICE_USER, BrokerSecurity
from simguard.kafka_clients import admin_client, ensure_topics
from simguard.settings import Settings

ALL_HOSTS = "*"
# What simguard's own user does on its topics (and ALTER_CONFIGS on the fixed ones).
_SERVICE_TOPIC_OPERATIONS = (
    ACLOperation.READ,
    ACLOperation.WRITE,
    ACLOperation.DESCRIBE,
    ACLOperation.CREATE,
    ACLOperation.DESCRIBE_CONFIGS,
)


class AclError(RuntimeError):
    """The broker refused to create an ACL or a user."""


@dataclass(frozen=True)
class Principals:
    """Kafka user names, without the `User:` prefix."""

    service: str = SERVICE_USER
    # `NAME`, or `NAME=PLMN,PLMN` for an operator that reads its notice topics.
    operators: tuple[str, ...] = ()
    regulators: tuple[str, ...] = ()


def acl_layout(settings: Settings, principals: Principals) -> list[ACL]:
    """Every ACL simguard's deployment needs, for these principals."""
    service = f"User:{principals.service}"
    own_topics = list(settings.topics().values())
    acls = [
        _allow(service, ResourceType.TOPIC, topic, operation)
        for topic in own_topics
        for operation in (*_SERVICE_TOPIC_OPERATIONS, ACLOperation.ALTER_CONFIGS)
    ]
    # Operators' notice topics are made on each operator's first notice, and
    # partners' indicator topics on each partner's first indicator.
    acls += [
        _allow(service, ResourceType.TOPIC, prefix, operation, prefixed=True)
        for prefix in (settings.topic_notices_prefix, settings.topic_indicators_prefix)
        for operation in _SERVICE_TOPIC_OPERATIONS
    ]
    # Each partner link's heartbeats, which MirrorMaker 2 copies here: their age is its lag.
    acls += [
        _allow(service, ResourceType.TOPIC, f"{partner}.heartbeats", operation)
        for partner in sorted(settings.rules.partners)
        for operation in (ACLOperation.READ, ACLOperation.DESCRIBE)
    ]
    acls += [
        _allow(service, ResourceType.GROUP, settings.consumer_group, ACLOperation.READ),
        _allow(service, ResourceType.GROUP, settings.consumer_group, ACLOperation.DESCRIBE),
    ]
    # Workers name their transactional ids simguard-<group>-<worker name>.
    transactional = f"simguard-{settings.consumer_group}-"
    acls += [
        _allow(service, ResourceType.TRANSACTIONAL_ID, transactional, operation, prefixed=True)
        for operation in (ACLOperation.WRITE, ACLOperation.DESCRIBE)
    ]
    operator_topics = [
        settings.topic_activations,
        settings.topic_registrations,
        settings.topic_network_events,
        settings.topic_usage,
    ]
    for entry in principals.operators:
        name, _, plmns = entry.partition("=")
        acls += [
            _allow(f"User:{name}", ResourceType.TOPIC, topic, operation)
            for topic in operator_topics
            for operation in (ACLOperation.WRITE, ACLOperation.DESCRIBE)
        ]
        notice_topics = [settings.notice_topic(p.strip()) for p in plmns.split(",") if p.strip()]
        acls += [
            _allow(f"User:{name}", ResourceType.TOPIC, topic, operation)
            for topic in notice_topics
            for operation in (ACLOperation.READ, ACLOperation.DESCRIBE)
        ]
        if notice_topics:
            acls.append(
                _allow(
                    f"User:{name}", ResourceType.GROUP, f"{name}.", ACLOperation.READ, prefixed=True
                )
            )
    for name in principals.regulators:
        regulator = f"User:{name}"
        acls += [
            _allow(regulator, ResourceType.TOPIC, topic, operation)
            for topic in (settings.topic_flagged, settings.topic_decisions_audit)
            for operation in (ACLOperation.READ, ACLOperation.DESCRIBE)
        ]
        acls.append(
            _allow(regulator, ResourceType.GROUP, f"{name}.", ACLOperation.READ, prefixed=True)
        )
    return acls


def apply_acls(settings: Settings, principals: Principals) -> int:
    """Create the layout's ACLs (creating one that exists changes nothing);
    returns how many the broker holds for it."""
    acls = acl_layout(settings, principals)
    admin = admin_client(settings)
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    failed = result["failed"]
    if failed:
        raise AclError(f"the broker refused {len(failed)} ACL(s): {failed[0]!r}")
    return len(result["succeeded"])


def set_scram_users(settings: Settings, passwords: Iterable[tuple[str, str]]) -> None:
    """Create or change SCRAM users (name, password) with the settings' mechanism."""
    alterations = [
        UserScramCredentialUpsertion(name, settings.kafka_sasl_mechanism, password)
        for name, password in passwords
    ]
    admin = admin_client(settings)
    try:
        errors = admin.alter_user_scram_credentials(alterations)
    finally:
        admin.close()
    refused = {user: error for user, error in errors.items() if error}
    if refused:
        raise AclError(f"the broker refused SCRAM credentials: {refused}")


def _allow(
    principal: str,
    resource: ResourceType,
    name: str,
    operation: ACLOperation,
    *,
    prefixed: bool = False,
) -> ACL:
    pattern = ACLResourcePatternType.PREFIXED if prefixed else ACLResourcePatternType.LITERAL
    return ACL(
        principal=principal,
        host=ALL_HOSTS,
        operation=operation,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(resource, name, pattern),
    )


def secure_for_simguard(
    settings: Settings, security: BrokerSecurity, principals: Principals | None = None
) -> Settings:
    """On a node simguard secured itself: simguard's user, its topics and the
    ACLs of `principals` (simguard's alone by default), made as the admin.
    Returns `settings` connecting as simguard's own user."""
    admin = settings.replace(**security.admin_settings())
    service = settings.replace(**security.service_settings())
    set_scram_users(admin, [(SERVICE_USER, service.kafka_sasl_password)])
    ensure_topics(admin)
    apply_acls(admin, principals or Principals())
    return service
