"""Connectors: public-dataset formats and your own logs, mapped onto the raw tables.

``connector_for(format, path, name)`` returns a :class:`~transforms.connectors.base.Connector`; every
connector yields the same :class:`~transforms.connectors.base.Record` s, which
``pipelines.connect.ingest_dataset`` stages into the warehouse.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from transforms.connectors.amazon import AmazonConnector
from transforms.connectors.base import (
    CONNECTOR_SPECS,
    RANDOM_EXPOSURE_TABLE,
    Connector,
    ConnectorError,
    Record,
)
from transforms.connectors.coat import CoatConnector
from transforms.connectors.diginetica import DigineticaConnector
from transforms.connectors.finn import FinnConnector
from transforms.connectors.mind import MindConnector
from transforms.connectors.movielens import MovieLensConnector
from transforms.connectors.obd import OpenBanditConnector
from transforms.connectors.sequences import SequencesConnector
from transforms.connectors.tabular import TabularConnector, TabularMapping, TabularMappingError, load_mapping
from transforms.connectors.yahoo_r3 import YahooR3Connector
from transforms.connectors.yoochoose import YooChooseConnector


class ConnectorFormat(StrEnum):
    """The ``<format>`` of ``recforge ingest <format>``."""

    MOVIELENS = "movielens"
    AMAZON = "amazon"
    OBD = "obd"
    MIND = "mind"
    COAT = "coat"
    YAHOO_R3 = "yahoo-r3"
    DIGINETICA = "diginetica"
    YOOCHOOSE = "yoochoose"
    FINN = "finn"
    SEQUENCES = "sequences"
    TABULAR = "tabular"


CONNECTORS: dict[ConnectorFormat, type[Connector]] = {
    ConnectorFormat.MOVIELENS: MovieLensConnector,
    ConnectorFormat.AMAZON: AmazonConnector,
    ConnectorFormat.OBD: OpenBanditConnector,
    ConnectorFormat.MIND: MindConnector,
    ConnectorFormat.COAT: CoatConnector,
    ConnectorFormat.YAHOO_R3: YahooR3Connector,
    ConnectorFormat.DIGINETICA: DigineticaConnector,
    ConnectorFormat.YOOCHOOSE: YooChooseConnector,
    ConnectorFormat.FINN: FinnConnector,
    ConnectorFormat.SEQUENCES: SequencesConnector,
    ConnectorFormat.TABULAR: TabularConnector,
}


def connector_for(
    fmt: ConnectorFormat | str, path: Path, name: str | None = None, mapping: Path | TabularMapping | None = None
) -> Connector:
    """The connector for ``fmt`` reading ``path``; ``mapping`` only for ``tabular``."""
    try:
        kind = ConnectorFormat(fmt)
    except ValueError as exc:
        raise ConnectorError(f"unknown format {fmt!r}; choose one of {[f.value for f in ConnectorFormat]}") from exc
    if kind is ConnectorFormat.TABULAR:
        return TabularConnector(Path(path), name, mapping)
    if mapping is not None:
        raise ConnectorError(f"--mapping applies to the tabular format only, not {kind.value}")
    return CONNECTORS[kind](Path(path), name)


__all__ = [
    "CONNECTORS",
    "CONNECTOR_SPECS",
    "RANDOM_EXPOSURE_TABLE",
    "Connector",
    "ConnectorError",
    "ConnectorFormat",
    "Record",
    "TabularMapping",
    "TabularMappingError",
    "connector_for",
    "load_mapping",
]
