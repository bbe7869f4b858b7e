"""The networks a simulated SIM is seen on: Thai operators, their cells, and
the real neighbour and destination networks of roaming.

Countries are never typed next to a PLMN id: they come from the same MCC table
the rules use (`schemas.identifiers.plmn_country`), so the simulator and the
worker cannot disagree on where a network is.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Final

from schemas.identifiers import plmn_country

# Home operators with a rough share of new activations: AIS (52003, and 52001
# for its older SIM ranges), True (52004), dtac (52005).
HOME_OPERATORS: Final = {"52003": 0.40, "52001": 0.05, "52004": 0.33, "52005": 0.22}

# Networks where Thai mule SIMs surface: Cambodia (Cellcard, Smart), Myanmar
# (MPT, Ooredoo, Telenor/ATOM), Laos (LTC, ETL).
HIGH_RISK_NETWORKS: Final = ("45601", "45606", "41401", "41405", "41406", "45701", "45702")
# A land crossing from the south of Thailand: Maxis, Celcom.
MALAYSIAN_NETWORKS: Final = ("50212", "50219")
# Destinations reached by air, far from Thailand's land borders: Singtel, M1,
# NTT docomo, SoftBank, T-Mobile US, Viettel.
FLIGHT_NETWORKS: Final = ("52501", "52505", "44010", "44020", "310260", "45204")

# Location area codes: ordinary cells below this, border cells from it, so no
# ordinary cell is ever a border cell.
BORDER_LAC_START: Final = 9000
BORDER_CELLS_PER_OPERATOR: Final = 12


def country(plmn: str) -> str:
    found = plmn_country(plmn)
    if found is None:
        raise ValueError(f"PLMN {plmn} has no country in the MCC table")
    return found


def networks_in(countries: Collection[str], plmns: Sequence[str]) -> list[str]:
    return [plmn for plmn in plmns if country(plmn) in countries]


def pick_operator(rng: random.Random) -> str:
    operators = list(HOME_OPERATORS)
    return rng.choices(operators, weights=[HOME_OPERATORS[p] for p in operators])[0]


class CellPlan:
    """Cell ids per network: "<plmn>-<lac>-<ci>", with a fixed set of border cells.

    When the deployment's rules already name border cells, dwellers use those
    (a sample), so the simulation agrees with the CSV the worker has loaded;
    otherwise the plan makes its own and `border_cells` is what to load.
    """

    def __init__(self, rng: random.Random, configured_border_cells: Collection[str]) -> None:
        self._rng = rng
        self._configured = frozenset(configured_border_cells)
        # Drawn even when the configured cells replace them, so that the rest
        # of the population does not change with the deployment's CSV.
        self.border_by_operator: dict[str, list[str]] = {}
        for operator in HOME_OPERATORS:
            lacs = rng.sample(range(BORDER_LAC_START, BORDER_LAC_START + 1000), 3)
            self.border_by_operator[operator] = sorted(
                f"{operator}-{rng.choice(lacs)}-{ci:05d}"
                for ci in rng.sample(range(1, 65536), BORDER_CELLS_PER_OPERATOR)
            )
        if self._configured:
            configured = sorted(self._configured)
            for index, operator in enumerate(HOME_OPERATORS):
                own = [cell for cell in configured if cell.startswith(f"{operator}-")]
                shared = configured[index :: len(HOME_OPERATORS)] or configured
                self.border_by_operator[operator] = (own or shared)[:BORDER_CELLS_PER_OPERATOR]

    @property
    def border_cells(self) -> list[str]:
        return sorted({cell for cells in self.border_by_operator.values() for cell in cells})

    def border_cell(self, operator: str) -> str:
        # One draw from the same range whatever the number of cells, so the
        # draws after it do not depend on the deployment's CSV either.
        cells = self.border_by_operator[operator]
        return cells[self._rng.randrange(BORDER_CELLS_PER_OPERATOR) % len(cells)]

    def ordinary_cell(self, plmn: str) -> str:
        """A cell away from any border: never in the border list."""
        while True:
            lac = self._rng.randrange(1000, BORDER_LAC_START)
            cell = f"{plmn}-{lac}-{self._rng.randrange(1, 65536):05d}"
            if cell not in self._configured:
                return cell
