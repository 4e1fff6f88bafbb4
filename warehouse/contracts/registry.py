"""Every contract, found by type: declare a table as a module-level ``TableContract`` constant in its
layer's module and ``all_contracts()`` finds it (a new table needs no registration; a new layer module
is listed once in ``LAYER_MODULES``)."""

from __future__ import annotations

from types import ModuleType

import warehouse.contracts.core as core
import warehouse.contracts.enrichment as enrichment
import warehouse.contracts.evaluation as evaluation
import warehouse.contracts.labels as labels
import warehouse.contracts.models as models
import warehouse.contracts.quarantine as quarantine
import warehouse.contracts.raw as raw
import warehouse.contracts.semantic_ids as semantic_ids
import warehouse.contracts.training_data as training_data
from warehouse.contracts.base import TableContract
from warehouse.contracts.quarantine import QUARANTINE_TABLES

# In data-flow order; all_contracts() lists their contracts in this order, then the quarantine tables.
LAYER_MODULES: tuple[ModuleType, ...] = (raw, quarantine, core, evaluation, enrichment, labels, training_data, semantic_ids, models)


def all_contracts() -> tuple[TableContract, ...]:
    """Every contract declared in the layer modules (found by type, so a new table needs no registration)."""
    found: dict[int, TableContract] = {}  # by identity: a constant one module imports from another counts once
    for module in LAYER_MODULES:
        for value in vars(module).values():
            if isinstance(value, TableContract):
                found.setdefault(id(value), value)
    return tuple(found.values()) + QUARANTINE_TABLES


def contract_for(layer: str, name: str) -> TableContract:
    """Look a contract up by layer and name."""
    for c in all_contracts():
        if c.layer.value == layer and c.name == name:
            return c
    raise KeyError(f"no table contract for {layer}/{name}")
