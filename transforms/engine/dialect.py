"""SQL macros for the constructs that DuckDB and Spark SQL spell differently.

Domain SQL is written once against a :class:`Dialect`; no domain module names an engine. Add a macro
here (both implementations, and a parity test through the domain code that uses it) whenever a
construct is not in the common subset.
"""

from __future__ import annotations

import abc
from enum import StrEnum


class EngineKind(StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


class Dialect(abc.ABC):
    """SQL macros for the constructs that are not portable between engines."""

    kind: EngineKind

    @abc.abstractmethod
    def json_valid_object(self, col: str) -> str:
        """True when ``col`` holds a JSON object."""

    def json_object_fields(self, col: str, json_keys: list[str], text_keys: list[str]) -> str | None:
        """One parse of the JSON object in ``col`` into a struct, or None where the engine cannot.

        The struct holds ``json_keys`` as JSON values (read with ``key=None`` in the ``json_*`` macros
        below) and ``text_keys`` as text, exactly as :meth:`json_str` gives it (NULL when absent or JSON
        null), so a scalar field costs no second parse. Without it, each field parses the whole line.
        """
        return None

    @abc.abstractmethod
    def json_str(self, col: str, key: str | None) -> str:
        """Scalar ``key`` of the JSON object in ``col`` as text (NULL when absent or JSON null).

        ``key=None`` in this and the next macros: ``col`` is the JSON value itself.
        """

    @abc.abstractmethod
    def json_raw(self, col: str, key: str | None) -> str:
        """Value of ``key`` as JSON text (objects and lists serialized), NULL when absent."""

    @abc.abstractmethod
    def json_str_list(self, col: str, key: str | None) -> str:
        """A JSON list of strings under ``key`` as a list<string> (NULL when absent or not a list)."""

    @abc.abstractmethod
    def json_id(self, col: str, key: str | None) -> str:
        """``key`` as an id: the text of a JSON string that has a non-blank character, or of an integer; else NULL.

        Objects, lists, booleans, fractions and blank strings are not ids.
        """

    def undecodable(self, col: str, mark: str) -> str:
        """True when the text line ``col`` was not valid UTF-8: recforge's readers mark such a line with ``mark``."""
        return f"substr({col}, 1, 1) = '{mark}'"

    def shown_line(self, col: str, mark: str) -> str:
        """The text to keep in quarantine for the line ``col`` (without the mark of an undecodable line)."""
        return f"CASE WHEN substr({col}, 1, 1) = '{mark}' THEN substr({col}, 2) ELSE {col} END"

    @abc.abstractmethod
    def has_text(self, expr: str) -> str:
        """True when the text ``expr`` holds a character other than whitespace."""

    @abc.abstractmethod
    def try_timestamp(self, expr: str) -> str:
        """Parse an ISO-8601 text timestamp to a UTC timestamp, NULL when unparseable."""

    @abc.abstractmethod
    def epoch_ms(self, expr: str) -> str:
        """Milliseconds since the epoch of a timestamp expression, as BIGINT."""

    @abc.abstractmethod
    def ordered_list(self, value: str, order_by: str) -> str:
        """Aggregate ``value`` into a list ordered by ``order_by`` (an aggregate expression)."""

    @abc.abstractmethod
    def list_slice(self, expr: str, start: int, length: int) -> str:
        """``length`` elements of a list starting at 1-based ``start``."""

    @abc.abstractmethod
    def is_ascii(self, expr: str) -> str:
        """True when the text ``expr`` is ASCII only (NULL for NULL)."""

    @abc.abstractmethod
    def hash64(self, expr: str) -> str:
        """A stable 64-bit integer hash of one or more comma-separated expressions (equal values, equal
        hashes; collisions possible). Values differ between engines: group by it, never compare across engines."""

    @abc.abstractmethod
    def double_list(self, expr: str) -> str:
        """Cast a list expression to a list of doubles."""

    @abc.abstractmethod
    def list_len(self, expr: str) -> str:
        """Number of elements of a list."""

    def materialized(self) -> str | None:
        """The keyword that makes a CTE referenced several times run once (``AS MATERIALIZED (...)``), or
        None where the engine has none (Spark would run such a CTE once per reference)."""
        return None

    @abc.abstractmethod
    def list_min(self, expr: str) -> str: ...

    @abc.abstractmethod
    def list_max(self, expr: str) -> str: ...

    @abc.abstractmethod
    def empty_list(self, element: str) -> str:
        """An empty list of ``element`` (an SQL type name such as ``BIGINT``)."""

    @abc.abstractmethod
    def null_list(self, element: str, depth: int = 1) -> str:
        """A typed NULL list (of lists, for ``depth`` 2)."""

    @abc.abstractmethod
    def window_list(self, value: str, partition: str, order: str, preceding: int) -> str:
        """The ``preceding`` values before the current row (oldest first), never NULL (empty at the start)."""

    @abc.abstractmethod
    def ordered_structs(self, fields: dict[str, str], order: str) -> str:
        """Aggregate rows into a list of structs ``{k: order, <name>: <expr>...}`` sorted by ``order``
        (unique within the group, so the sort is total and equal on both engines)."""

    @abc.abstractmethod
    def list_field(self, expr: str, field: str) -> str:
        """One field of every struct of a list column."""

    @abc.abstractmethod
    def explode(self, expr: str) -> str:
        """One row per element of a list, in a SELECT list."""

    @abc.abstractmethod
    def list_element(self, expr: str, index0: str) -> str:
        """Element ``index0`` (0-based) of a list, NULL when the list is NULL or too short."""

    def date_of(self, expr: str) -> str:
        return f"CAST({expr} AS DATE)"


class DuckDBDialect(Dialect):
    kind = EngineKind.DUCKDB

    def json_valid_object(self, col: str) -> str:
        # CASE, not AND: DuckDB may evaluate both sides. Valid JSON is an object exactly when its first
        # character after JSON whitespace is "{" (cheaper than json_type, which parses the line again).
        # Nearly every line starts with "{" itself: only the others need the whitespace trimmed.
        return (f"(CASE WHEN NOT json_valid({col}) THEN false WHEN starts_with({col}, '{{') THEN true"
                f" ELSE left(ltrim({col}, chr(32) || chr(9) || chr(10) || chr(13)), 1) = '{{' END)")

    def json_object_fields(self, col: str, json_keys: list[str], text_keys: list[str]) -> str | None:
        shape = ", ".join([f'"{k}": "JSON"' for k in json_keys] + [f'"{k}": "VARCHAR"' for k in text_keys])
        return f"json_transform({col}, '{{{shape}}}')"

    def json_str(self, col: str, key: str | None) -> str:
        return f"json_extract_string({col}, {_duckdb_path(key)})"

    def json_raw(self, col: str, key: str | None) -> str:
        if key is None:  # a JSON value (minified by json_transform): its text, unless it is null
            return f"NULLIF(CAST({col} AS VARCHAR), 'null')"
        path = _duckdb_path(key)
        return f"CASE WHEN json_type({col}, {path}) = 'NULL' THEN NULL ELSE CAST(json_extract({col}, {path}) AS VARCHAR) END"

    def json_str_list(self, col: str, key: str | None) -> str:
        elements = "'$[*]'" if key is None else f"'$.\"{key}\"[*]'"
        return f"CASE WHEN json_type({col}, {_duckdb_path(key)}) = 'ARRAY' THEN CAST(json_extract_string({col}, {elements}) AS VARCHAR[]) END"

    def json_id(self, col: str, key: str | None) -> str:
        if key is None:
            # A JSON value's text tells its type: a string starts with a quote, an integer is digits
            # (three times cheaper than json_type and a second extraction, on 5 id fields an event).
            text = (f"CASE WHEN left({col}, 1) = '\"' THEN json_extract_string({col}, '$')"
                    f" WHEN regexp_full_match({col}, '-?[0-9]+') THEN CAST({col} AS VARCHAR) END")
        else:
            text = (f"CASE WHEN json_type({col}, {_duckdb_path(key)}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'HUGEINT')"
                    f" THEN {self.json_str(col, key)} END")
        return f"CASE WHEN {self.has_text(text)} THEN {text} END"

    def undecodable(self, col: str, mark: str) -> str:
        # The mark as chr(): a query that is all ASCII costs the client a quarter less to prepare.
        return f"starts_with({col}, chr({ord(mark)}))"

    def shown_line(self, col: str, mark: str) -> str:
        return f"CASE WHEN starts_with({col}, chr({ord(mark)})) THEN substr({col}, 2) ELSE {col} END"

    def has_text(self, expr: str) -> str:
        # RE2's \s is ASCII whitespace ([\t\n\f\r ], all at or below the space), so text whose first
        # character is past the space has text; only the rest need the expression.
        return f"(CASE WHEN ascii({expr}) > 32 THEN true ELSE regexp_matches({expr}, '\\S') END)"

    def try_timestamp(self, expr: str) -> str:
        return f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMPTZ)"

    def epoch_ms(self, expr: str) -> str:
        return f"epoch_ms({expr})"

    def ordered_list(self, value: str, order_by: str) -> str:
        return f"list({value} ORDER BY {order_by})"

    def list_slice(self, expr: str, start: int, length: int) -> str:
        return f"{expr}[{start}:{start + length - 1}]"

    def is_ascii(self, expr: str) -> str:
        return f"(strlen({expr}) = length({expr}))"  # bytes against characters

    def hash64(self, expr: str) -> str:
        return f"hash({expr})"  # UBIGINT: a cast to BIGINT fails on half the values

    def double_list(self, expr: str) -> str:
        return f"CAST({expr} AS DOUBLE[])"

    def list_len(self, expr: str) -> str:
        return f"len({expr})"

    def materialized(self) -> str | None:
        return "MATERIALIZED"

    def list_min(self, expr: str) -> str:
        return f"list_min({expr})"

    def list_max(self, expr: str) -> str:
        return f"list_max({expr})"

    def empty_list(self, element: str) -> str:
        return f"CAST([] AS {element}[])"

    def null_list(self, element: str, depth: int = 1) -> str:
        return f"CAST(NULL AS {element}{'[]' * depth})"

    def window_list(self, value: str, partition: str, order: str, preceding: int) -> str:
        frame = f"OVER (PARTITION BY {partition} ORDER BY {order} ROWS BETWEEN {preceding} PRECEDING AND 1 PRECEDING)"
        return f"COALESCE(list({value} ORDER BY {order}) {frame}, {self.empty_list('BIGINT')})"

    def ordered_structs(self, fields: dict[str, str], order: str) -> str:
        pairs = ", ".join(f"'{name}': {expr}" for name, expr in fields.items())
        # Sorting each group's list by its leading key is about 20% faster than an ordered aggregate.
        return f"list_sort(list({{'k': {order}, {pairs}}}))"

    def list_field(self, expr: str, field: str) -> str:
        return f"list_transform({expr}, lambda x: x.{field})"

    def explode(self, expr: str) -> str:
        return f"unnest({expr})"

    def list_element(self, expr: str, index0: str) -> str:
        return f"list_extract({expr}, {index0} + 1)"


class SparkDialect(Dialect):
    kind = EngineKind.SPARK

    def json_valid_object(self, col: str) -> str:
        # get_json_object returns NULL for text that is not valid JSON; an object starts with '{'.
        return f"(get_json_object({col}, '$') IS NOT NULL AND ltrim({col}) LIKE '{{%')"

    def json_str(self, col: str, key: str | None) -> str:
        return f"get_json_object({col}, {_spark_path(key)})"

    def json_raw(self, col: str, key: str | None) -> str:
        return f"get_json_object({col}, {_spark_path(key)})"

    def json_str_list(self, col: str, key: str | None) -> str:
        raw = self.json_raw(col, key)
        return f"CASE WHEN ltrim({raw}) LIKE '[%' THEN from_json({raw}, 'array<string>') END"

    def json_id(self, col: str, key: str | None) -> str:
        # get_json_object does not say a value's type, so the value's first token is read from the line:
        # a string starts with a quote, an integer is digits. (When the key is not found that way, as
        # with a nested object's key before it, an object or a list is still known by its text.)
        text = self.json_str(col, key)
        token = "''" if key is None else f"regexp_extract({col}, '{_spark_regex(_VALUE_TOKEN.format(key=key))}', 1)"
        return (f"CASE WHEN {self.has_text(text)} AND NOT (ltrim({text}) LIKE '{{%' OR ltrim({text}) LIKE '[%')"
                f" AND ({token} = '' OR {token} LIKE '\"%' OR {token} RLIKE '{_spark_regex('^-?[0-9]+$')}')"
                f" THEN {text} END")

    def has_text(self, expr: str) -> str:
        return f"({expr} RLIKE '\\\\S')"

    def undecodable(self, col: str, mark: str) -> str:
        # Spark's text reader keeps a line's bytes as they are, so invalid UTF-8 is seen here.
        return f"(NOT is_valid_utf8({col}) OR {super().undecodable(col, mark)})"

    def shown_line(self, col: str, mark: str) -> str:
        # Invalid bytes cannot stand in a string column: they are shown as U+FFFD.
        return f"CASE WHEN NOT is_valid_utf8({col}) THEN make_valid_utf8({col}) ELSE {super().shown_line(col, mark)} END"

    def try_timestamp(self, expr: str) -> str:
        return f"try_to_timestamp({expr})"

    def epoch_ms(self, expr: str) -> str:
        return f"unix_millis({expr})"

    def ordered_list(self, value: str, order_by: str) -> str:
        # collect_list has no ORDER BY: sort (key, value) structs and project the values back out.
        return f"transform(array_sort(collect_list(struct({order_by} AS k, {value} AS v))), x -> x.v)"

    def list_slice(self, expr: str, start: int, length: int) -> str:
        return f"slice({expr}, {start}, {length})"

    def is_ascii(self, expr: str) -> str:
        return f"(octet_length({expr}) = char_length({expr}))"

    def hash64(self, expr: str) -> str:
        return f"xxhash64({expr})"

    def double_list(self, expr: str) -> str:
        return f"CAST({expr} AS ARRAY<DOUBLE>)"

    def list_len(self, expr: str) -> str:
        return f"size({expr})"

    def list_min(self, expr: str) -> str:
        return f"array_min({expr})"

    def list_max(self, expr: str) -> str:
        return f"array_max({expr})"

    def empty_list(self, element: str) -> str:
        return f"CAST(array() AS ARRAY<{element}>)"

    def null_list(self, element: str, depth: int = 1) -> str:
        return f"CAST(NULL AS {'ARRAY<' * depth}{element}{'>' * depth})"

    def window_list(self, value: str, partition: str, order: str, preceding: int) -> str:
        frame = f"OVER (PARTITION BY {partition} ORDER BY {order} ROWS BETWEEN {preceding} PRECEDING AND 1 PRECEDING)"
        # collect_list does not promise frame order: sort (order, value) pairs and project the values.
        return (
            f"COALESCE(transform(array_sort(collect_list(struct({order} AS k, {value} AS v)) {frame}), x -> x.v), "
            f"{self.empty_list('BIGINT')})"
        )

    def ordered_structs(self, fields: dict[str, str], order: str) -> str:
        pairs = ", ".join(f"'{name}', {expr}" for name, expr in fields.items())
        return f"array_sort(collect_list(named_struct('k', {order}, {pairs})))"

    def list_field(self, expr: str, field: str) -> str:
        return f"transform({expr}, x -> x.{field})"

    def explode(self, expr: str) -> str:
        return f"explode({expr})"

    def list_element(self, expr: str, index0: str) -> str:
        # element_at raises on a short list under ANSI mode; try_element_at returns NULL like DuckDB.
        return f"try_element_at({expr}, {index0} + 1)"


def _duckdb_path(key: str | None) -> str:
    return "'$'" if key is None else f"'$.\"{key}\"'"


def _spark_path(key: str | None) -> str:
    return "'$'" if key is None else f"'$.{key}'"


# The first token of a top-level key's value in a JSON line: after "{" or "," (not inside a string, where a
# quote would be escaped), the quoted key, a colon, then everything up to a separator.
_VALUE_TOKEN = r'[{{,]\s*"{key}"\s*:\s*([^\s,}}\]]+)'


def _spark_regex(pattern: str) -> str:
    """A regular expression as a Spark SQL string literal's body (backslashes and quotes escaped)."""
    return pattern.replace("\\", "\\\\").replace("'", "\\'")
