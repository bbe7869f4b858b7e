"""The reasons a SIM is flagged: one list for the rules that raise them, the
case record that carries them, the API that shows them and the simulator
that predicts them (DESIGN.md, Rules)."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    UNREGISTERED = "UNREGISTERED"
    IDENTITY_OVER_LIMIT = "IDENTITY_OVER_LIMIT"
    REGISTRATION_REVOKED = "REGISTRATION_REVOKED"
    ACTIVATED_THEN_ABROAD = "ACTIVATED_THEN_ABROAD"
    HIGH_RISK_ROAMING = "HIGH_RISK_ROAMING"
    BORDER_CELL_DWELL = "BORDER_CELL_DWELL"
    IMPOSSIBLE_TRAVEL = "IMPOSSIBLE_TRAVEL"
    BULK_ACTIVATION_BURST = "BULK_ACTIVATION_BURST"
    SIM_DEVICE_CYCLING = "SIM_DEVICE_CYCLING"
    DEVICE_MANY_SIMS = "DEVICE_MANY_SIMS"
    HIGH_CALL_VOLUME = "HIGH_CALL_VOLUME"
    STATIC_HIGH_VOLUME = "STATIC_HIGH_VOLUME"
