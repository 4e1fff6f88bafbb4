"""The contracts package: every table declared in a layer module is found, importable from the package,
and looked up by its layer and name."""

from __future__ import annotations

import pkgutil
from types import ModuleType

import pytest

from warehouse import contracts
from warehouse.contracts import LAYER_MODULES, RAW_TABLES, TableContract, all_contracts, contract_for

NOT_LAYER_MODULES = {"base", "registry"}  # shared types and the lookup, no tables


def test_every_module_of_the_package_is_a_layer_module() -> None:
    # A module missing from LAYER_MODULES would hide its tables from all_contracts() and contract_for().
    modules = {info.name for info in pkgutil.iter_modules(contracts.__path__)} - NOT_LAYER_MODULES
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in LAYER_MODULES}


def test_every_public_name_of_a_layer_module_is_importable_from_the_package() -> None:
    for module in LAYER_MODULES:
        for name, value in vars(module).items():
            # Tables, field lists, helpers and the shared types they import; not modules (pa) or __future__.
            if name.startswith("_") or name == "annotations" or isinstance(value, ModuleType):
                continue
            assert getattr(contracts, name, None) is value, f"warehouse.contracts does not re-export {module.__name__}.{name}"


def test_every_declared_table_is_found_once_and_looked_up_by_layer_and_name() -> None:
    found = all_contracts()
    declared = {id(v) for m in LAYER_MODULES for v in vars(m).values() if isinstance(v, TableContract)}
    assert declared <= {id(c) for c in found}
    assert len({id(c) for c in found}) == len(found)
    for contract in found:
        assert contract_for(contract.layer.value, contract.name) is contract


def test_each_raw_table_has_its_quarantine_table() -> None:
    for raw in RAW_TABLES:
        quarantine = contract_for("quarantine", raw.name)
        assert quarantine.partitioned == raw.partitioned and quarantine.key == ("source_file", "line_no")


def test_an_unknown_table_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="raw/nope"):
        contract_for("raw", "nope")
