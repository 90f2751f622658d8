"""Layout files → loaded `TableLayout`s (layouts.md): directory rules, validation, defaults, ids.

A layout file means what it means to KijiSchema: same dialect, same defaults, same validation, same
column ids. Every problem stops start-up with one `LayoutError` naming the file (relative to the
layouts directory), the field path and the rule: `shop/users.json: keys_format.salt.hash_size: Valid
hash sizes are between 1 and 16`.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kijirest import lenient_json
from kijirest.avro.schema import (
    AvroSchemaError,
    Names,
    Schema,
    UndefinedNameError,
    UnionSchema,
    canonical_text,
    parse_schema,
)
from kijirest.layouts.columns import ColumnNames, column_id_text
from kijirest.layouts.desc import (
    CELL_SCHEMA,
    ROW_KEY_FORMAT,
    TABLE_LAYOUT_DESC,
    DecodeError,
    Rec,
    decode,
    encode,
    format_path,
    show,
)
from kijirest.layouts.model import (
    AvroSchemaRef,
    CellSpec,
    Column,
    Family,
    KeyComponent,
    LocalityGroup,
    RowKeySpec,
    TableLayout,
)

__all__ = [
    "MAX_LAYOUT_VERSION",
    "MIN_LAYOUT_VERSION",
    "Instance",
    "LayoutError",
    "check_schema_uids",
    "load_instance",
    "load_layout",
    "load_layout_dir",
    "load_schemas",
    "parse_layout_version",
]

log = logging.getLogger("kijirest.layouts")

Version = tuple[int, int, int]
MIN_LAYOUT_VERSION: Version = (1, 0, 0)
MAX_LAYOUT_VERSION: Version = (1, 5, 0)

_INSTANCE_NAME = re.compile(r"[a-zA-Z0-9_]+")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ALIAS = re.compile(r"[a-zA-Z0-9_-]+")
_VERSION = re.compile(r"([^-]*)-([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")
_REDEFINE = re.compile(r"Can't redefine: (\S+)$")


class LayoutError(Exception):
    """An invalid layout directory, layout file or schema file; stops start-up."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path:
            return f"{self.file}: {self.path}: {self.message}"
        return f"{self.file}: {self.message}"


@dataclass
class Instance:
    """One instance directory: its tables (sorted by name) and the named types of its `schemas/`."""

    name: str
    tables: dict[str, TableLayout] = field(default_factory=dict)
    schemas: Names = field(default_factory=Names)
    #: table name → its layout file, relative to the layouts directory (for messages)
    files: dict[str, str] = field(default_factory=dict)
    #: table name → its column-name translation, built once
    columns: dict[str, ColumnNames] = field(default_factory=dict)


def _layout_version_text(v: Version) -> str:
    return f"layout-{v[0]}.{v[1]}.{v[2]}"


def parse_layout_version(text: str) -> Version:
    """`layout-X[.Y[.Z]]` (missing parts 0) or `kiji-1.0` → (X, Y, Z); ValueError with the rule."""
    m = _VERSION.fullmatch(text)
    if m is None:
        raise ValueError(f"Invalid layout version: '{text}'. Expected 'layout-X[.Y[.Z]]'.")
    proto = m.group(1)
    version = tuple(int(g) if g is not None else 0 for g in m.group(2, 3, 4))
    if proto == "kiji" and version == (1, 0, 0):
        return (1, 0, 0)  # the deprecated name of layout-1.0.0
    if proto != "layout":
        raise ValueError(f"Invalid version protocol: '{proto}'. Expected 'layout'.")
    return version  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------
# One layout file


class _Invalid(Exception):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def load_layout(text: str, *, file: str, names: Names | None = None) -> TableLayout:
    """Load one layout file's text. `file` is its path relative to the layouts directory
    (`<instance>/<table>.json`): messages name it, its stem must equal the layout name, and its
    directory names the instance whose `schemas/` (`names`) CLASS columns refer to."""
    try:
        value = lenient_json.loads(text[1:] if text.startswith("\ufeff") else text)
    except lenient_json.LenientJSONError as e:
        raise LayoutError(file, "", str(e)) from None
    try:
        desc = decode(TABLE_LAYOUT_DESC, value)
    except DecodeError as e:
        raise LayoutError(file, format_path(e.path), e.message) from None
    try:
        return _Builder(file, names if names is not None else Names()).build(desc)
    except _Invalid as e:
        raise LayoutError(file, format_path(e.path), e.message) from None


class _Builder:
    """Validates a decoded TableLayoutDesc, assigns ids and builds the model (one file)."""

    def __init__(self, file: str, names: Names) -> None:
        self.file = file
        self.names = names
        self.instance = posixpath.dirname(file) or "."
        self.version: Version = (0, 0, 0)

    # -- helpers --------------------------------------------------------------------------------
    def gate(self, path: tuple[str | int, ...], feature: str, minimum: Version) -> None:
        if self.version < minimum:
            raise _Invalid(
                path,
                f"Support for {feature} begins with layout version {_layout_version_text(minimum)}",
            )

    @staticmethod
    def check_name(path: tuple[str | int, ...], kind: str, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise _Invalid(path, f"Invalid {kind} name: '{name}'.")

    @staticmethod
    def check_aliases(path: tuple[str | int, ...], kind: str, aliases: list[str]) -> None:
        for i, alias in enumerate(aliases):
            if not _ALIAS.fullmatch(alias):
                raise _Invalid((*path, i), f"Invalid {kind} alias: '{alias}'.")

    @staticmethod
    def check_not_diff(path: tuple[str | int, ...], kind: str, item: Rec) -> None:
        if item["delete"]:
            raise _Invalid(
                (*path, "delete"),
                f"Attempting to delete {kind} '{item['name']}' unknown in reference layout.",
            )
        if item["renamed_from"] is not None:
            raise _Invalid(
                (*path, "renamed_from"),
                f"Invalid rename: no reference {kind} '{item['renamed_from']}' to rename to "
                f"'{item['name']}' (a kijirest layout has no reference layout).",
            )

    @staticmethod
    def assign_ids(items: list[Rec], kind: str, path: tuple[str | int, ...]) -> None:
        """Explicit ids > 0 are kept; the others take the smallest free positive id, in order."""
        used: dict[int, str] = {}
        for i, item in enumerate(items):
            n = item["id"]
            if n < 0:
                raise _Invalid((*path, i, "id"), "id must not be negative")
            if n > 0:
                if n in used:
                    raise _Invalid(
                        (*path, i, "id"),
                        f"Duplicate {kind} ID '{column_id_text(n)}' associated to '{used[n]}' and "
                        f"'{item['name']}'.",
                    )
                used[n] = item["name"]
        free = 1
        for item in items:
            if item["id"] == 0:
                while free in used:
                    free += 1
                item["id"] = free
                used[free] = item["name"]

    # -- the table ------------------------------------------------------------------------------
    def build(self, d: Rec) -> TableLayout:
        try:
            self.version = parse_layout_version(d["version"])
        except ValueError as e:
            raise _Invalid(("version",), str(e)) from None
        if self.version > MAX_LAYOUT_VERSION:
            raise _Invalid(
                ("version",),
                f"The maximum layout version we support is {_layout_version_text(MAX_LAYOUT_VERSION)}; "
                f"this layout requires {_layout_version_text(self.version)}",
            )
        if self.version < MIN_LAYOUT_VERSION:
            raise _Invalid(
                ("version",),
                f"The minimum layout version we support is {_layout_version_text(MIN_LAYOUT_VERSION)}; "
                f"this layout requires {_layout_version_text(self.version)}",
            )

        name = d["name"]
        if not _NAME.fullmatch(name):
            raise _Invalid(("name",), f"Invalid table name: '{name}'.")
        file_name = posixpath.basename(self.file)
        if posixpath.splitext(file_name)[0] != name:
            raise _Invalid(("name",), f"layout name '{name}' does not match file name '{file_name}'")

        for key in ("max_filesize", "memstore_flushsize"):
            if d[key] is not None:
                self.gate((key,), key, (1, 2, 0))
                if d[key] <= 0:
                    raise _Invalid((key,), f"{key} must be greater than 0")
        translator = d["column_name_translator"]
        if translator != "SHORT":
            self.gate(("column_name_translator",), f"column_name_translator {translator}", (1, 5, 0))

        row_key = self.keys_format(d["keys_format"])
        lgs = self.locality_groups(d["locality_groups"], name, translator)

        if d["layout_id"] is None:
            d["layout_id"] = "1"
        return TableLayout(
            name=name,
            row_key=row_key,
            locality_groups=lgs,
            column_name_translator=translator,
            version=d["version"],
            max_filesize=d["max_filesize"],
            memstore_flushsize=d["memstore_flushsize"],
            effective=encode(TABLE_LAYOUT_DESC, d),
        )

    # -- row keys -------------------------------------------------------------------------------
    def keys_format(self, k: Rec) -> RowKeySpec:
        p: tuple[str | int, ...] = ("keys_format",)
        encoding = k["encoding"]
        if k.rtype is ROW_KEY_FORMAT:
            if encoding == "FORMATTED":
                raise _Invalid(
                    (*p, "encoding"),
                    "RowKeyFormat only supports encodings of type RAW, HASH and HASH_PREFIX. "
                    "Use RowKeyFormat2 instead",
                )
            if encoding == "RAW":
                return RowKeySpec("RAW")
            if not 0 <= k["hash_size"] <= 16:
                raise _Invalid(
                    (*p, "hash_size"),
                    "HASH or HASH_PREFIX row key formats require hash size to be between 0 and 16",
                )
            if k["hash_type"] != "MD5":
                raise _Invalid((*p, "hash_type"), "hash_type must be MD5 for HASH and HASH_PREFIX")
            return RowKeySpec(encoding, hash_size=16 if encoding == "HASH" else k["hash_size"])

        self.gate(p, "specifying keys_format as a RowKeyFormat2", (1, 1, 0))
        if encoding not in ("RAW", "FORMATTED"):
            raise _Invalid(
                (*p, "encoding"), f"RowKeyFormat2 only supports RAW or FORMATTED encoding. Found {encoding}"
            )
        if encoding == "RAW":
            return RowKeySpec("RAW")
        salt = k["salt"]
        if salt is None:
            raise _Invalid(
                (*p, "salt"), "Null values for RowKeyFormat2.salt are only allowed for RAW encoding."
            )
        components = k["components"]
        n = len(components)
        if n == 0:
            raise _Invalid((*p, "components"), "At least 1 component is required in row key format.")
        range_scan_start, nullable_start = k["range_scan_start_index"], k["nullable_start_index"]
        if not 1 <= salt["hash_size"] <= 16:
            raise _Invalid((*p, "salt", "hash_size"), "Valid hash sizes are between 1 and 16")
        if salt["suppress_key_materialization"] and range_scan_start != n:
            raise _Invalid(
                (*p, "range_scan_start_index"),
                "Range scans are not supported if suppress_key_materialization is true. Please set "
                "range_scan_start_index to components.size",
            )
        if not 1 <= nullable_start <= n:
            raise _Invalid(
                (*p, "nullable_start_index"),
                "Invalid index for nullable component. The second component onwards can be set to null.",
            )
        if not 1 <= range_scan_start <= n:
            raise _Invalid(
                (*p, "range_scan_start_index"),
                "Invalid range scan index. Range scans are supported starting with the second component.",
            )
        seen: set[str] = set()
        for i, c in enumerate(components):
            if not _NAME.fullmatch(c["name"]):
                raise _Invalid(
                    (*p, "components", i, "name"),
                    "Names should begin with a letter followed by a combination of letters, numbers and "
                    "underscores.",
                )
            if c["name"] in seen:
                raise _Invalid((*p, "components", i, "name"), "Component name already used.")
            seen.add(c["name"])
        return RowKeySpec(
            "FORMATTED",
            hash_size=salt["hash_size"],
            suppress_key_materialization=salt["suppress_key_materialization"],
            components=tuple(KeyComponent(c["name"], c["type"]) for c in components),
            range_scan_start_index=range_scan_start,
            nullable_start_index=nullable_start,
        )

    # -- locality groups, families, columns -----------------------------------------------------
    def locality_groups(self, items: list[Rec], table: str, translator: str) -> tuple[LocalityGroup, ...]:
        lg_names: set[str] = set()
        family_names: set[str] = set()
        for i, lg in enumerate(items):
            p: tuple[str | int, ...] = ("locality_groups", i)
            self.check_name((*p, "name"), "locality group", lg["name"])
            self.check_aliases((*p, "aliases"), "locality group", lg["aliases"])
            for j, n in enumerate((lg["name"], *lg["aliases"])):
                if n in lg_names:
                    where = (*p, "name") if j == 0 else (*p, "aliases", j - 1)
                    raise _Invalid(where, f"Duplicate locality group name: {n}")
                lg_names.add(n)
            self.check_not_diff(p, "locality group", lg)
            if lg["ttl_seconds"] <= 0:
                raise _Invalid(
                    (*p, "ttl_seconds"),
                    f"Invalid TTL seconds for locality group '{lg['name']}': TTL must be positive, "
                    f"got {lg['ttl_seconds']}.",
                )
            if lg["max_versions"] <= 0:
                raise _Invalid(
                    (*p, "max_versions"),
                    f"Invalid max versions for locality group '{lg['name']}': max versions must be "
                    f"positive, got {lg['max_versions']}.",
                )
            if lg["block_size"] is not None:
                self.gate((*p, "block_size"), "block_size", (1, 2, 0))
                if lg["block_size"] <= 0:
                    raise _Invalid((*p, "block_size"), "block_size must be greater than 0")
            if lg["bloom_type"] is not None:
                self.gate((*p, "bloom_type"), "bloom_type", (1, 2, 0))
            for j, fam in enumerate(lg["families"]):
                self.family(fam, lg, (*p, "families", j), table, translator, family_names)
        self.assign_ids(items, "locality group", ("locality_groups",))
        out = []
        for i, lg in enumerate(items):
            self.assign_ids(lg["families"], "family", ("locality_groups", i, "families"))
            fams = []
            for j, fam in enumerate(lg["families"]):
                p = ("locality_groups", i, "families", j)
                self.assign_ids(fam["columns"], "column", (*p, "columns"))
                map_cell = None
                if fam["map_schema"] is not None:
                    map_cell = self.cell(fam["map_schema"], (*p, "map_schema"))
                columns = tuple(
                    Column(
                        c["name"],
                        c["id"],
                        tuple(c["aliases"]),
                        self.cell(c["column_schema"], (*p, "columns", k, "column_schema")),
                    )
                    for k, c in enumerate(fam["columns"])
                )
                fams.append(
                    Family(fam["name"], fam["id"], tuple(fam["aliases"]), lg["name"], map_cell, columns)
                )
            out.append(
                LocalityGroup(
                    name=lg["name"],
                    id=lg["id"],
                    aliases=tuple(lg["aliases"]),
                    in_memory=lg["in_memory"],
                    max_versions=lg["max_versions"],
                    ttl_seconds=lg["ttl_seconds"],
                    compression_type=lg["compression_type"],
                    bloom_type=lg["bloom_type"],
                    block_size=lg["block_size"],
                    families=tuple(fams),
                )
            )
        return tuple(out)

    def family(
        self, fam: Rec, lg: Rec, p: tuple[str | int, ...], table: str, translator: str, seen: set[str]
    ) -> None:
        name = fam["name"]
        self.check_name((*p, "name"), "family", name)
        self.check_aliases((*p, "aliases"), "family", fam["aliases"])
        for j, n in enumerate((name, *fam["aliases"])):
            if n in seen:
                where = (*p, "name") if j == 0 else (*p, "aliases", j - 1)
                raise _Invalid(where, f"Layout for table '{table}' contains duplicate family name '{n}'.")
            seen.add(n)
        self.check_not_diff(p, "family", fam)
        if fam["map_schema"] is not None and fam["columns"]:
            raise _Invalid((*p, "columns"), f"Invalid family '{name}' with both map-type and columns")
        if translator == "HBASE_NATIVE":
            if name != lg["name"]:
                raise _Invalid(
                    (*p, "name"),
                    f"For HBASE_NATIVE column name translation, family: '{name}' must match locality "
                    f"group: '{lg['name']}'",
                )
            if fam["map_schema"] is not None:
                raise _Invalid(
                    (*p, "map_schema"),
                    f"For HBASE_NATIVE column name translation, family: '{name}' must be a group type.",
                )
        qualifiers: set[str] = set()
        for k, col in enumerate(fam["columns"]):
            cp = (*p, "columns", k)
            self.check_name((*cp, "name"), "column", col["name"])
            self.check_aliases((*cp, "aliases"), "column", col["aliases"])
            for j, n in enumerate((col["name"], *col["aliases"])):
                if n in qualifiers:
                    where = (*cp, "name") if j == 0 else (*cp, "aliases", j - 1)
                    raise _Invalid(where, f"Family '{name}' contains duplicate column qualifier '{n}'.")
                qualifiers.add(n)
            self.check_not_diff(cp, "column", col)

    # -- cell schemas ---------------------------------------------------------------------------
    def cell(self, cs: Rec, p: tuple[str | int, ...]) -> CellSpec:
        kind, storage = cs["type"], cs["storage"]
        gate = {"AVRO": (1, 3, 0), "RAW_BYTES": (1, 3, 0), "PROTOBUF": (1, 4, 0)}.get(kind)
        if gate is not None and self.version < gate:
            raise _Invalid(
                (*p, "type"),
                f"Cell type {kind} requires table layout version >= {_layout_version_text(gate)}, "
                f"got version {_layout_version_text(self.version)}",
            )
        if storage == "FINAL" and kind not in ("INLINE", "COUNTER"):
            raise _Invalid(
                (*p, "storage"), f"Invalid final column schema: {show(encode(CELL_SCHEMA, cs), 400)}."
            )
        if kind == "COUNTER" and storage != "FINAL":
            raise _Invalid(
                (*p, "storage"),
                f"Invalid counter schema, storage must be final: {show(encode(CELL_SCHEMA, cs), 400)}.",
            )
        for key in ("default_reader",):
            if cs[key] is not None:
                self.avro_schema_ref(cs[key], (*p, key))
        for key in ("readers", "written", "writers"):
            for i, ref in enumerate(cs[key] or ()):
                self.avro_schema_ref(ref, (*p, key, i))

        schema: str | None = None
        default_reader = writers = None
        if kind == "INLINE":
            if cs["value"] is None:
                raise _Invalid((*p, "value"), "INLINE column needs a value")
            schema = canonical_text(self.parse_text(cs["value"], (*p, "value"), "value"))
        elif kind == "CLASS":
            if cs["value"] is None:
                raise _Invalid((*p, "value"), "CLASS column needs a value")
            found = self.names.get(cs["value"])
            if found is None:
                raise _Invalid((*p, "value"), f"no schema named '{cs['value']}' in {self.instance}/schemas")
            schema = canonical_text(found)
        elif kind == "AVRO":
            ref = cs["default_reader"]
            if ref is not None:
                default_reader = AvroSchemaRef(ref["uid"], ref["json"])
                if ref["json"] is not None:
                    schema = canonical_text(
                        self.parse_text(ref["json"], (*p, "default_reader", "json"), "default_reader")
                    )
            if cs["writers"] is not None:
                refs = []
                for i, w in enumerate(cs["writers"]):
                    if w["json"] is not None:
                        self.parse_text(w["json"], (*p, "writers", i, "json"), f"writers[{i}]")
                    refs.append(AvroSchemaRef(w["uid"], w["json"]))
                writers = tuple(refs)
        return CellSpec(
            type=kind,
            storage=storage,
            value=cs["value"],
            avro_validation_policy=cs["avro_validation_policy"],
            default_reader=default_reader,
            writers=writers,
            schema=schema,
        )

    @staticmethod
    def avro_schema_ref(ref: Rec, p: tuple[str | int, ...]) -> None:
        if (ref["uid"] is None) == (ref["json"] is None):
            raise _Invalid(p, "AvroSchema needs exactly one of uid and json")
        if ref["uid"] is not None and ref["uid"] < 0:
            raise _Invalid((*p, "uid"), f"unknown schema uid {ref['uid']}")

    @staticmethod
    def parse_text(text: str, p: tuple[str | int, ...], what: str) -> Schema:
        """A schema given as JSON text in the layout, parsed on its own (Avro's parser: JSON plus
        comments)."""
        try:
            return parse_schema(lenient_json.loads(text, lenient=False))
        except (lenient_json.LenientJSONError, AvroSchemaError) as e:
            raise _Invalid(p, f"Invalid Avro schema in {what}: {e}") from None


# ---------------------------------------------------------------------------------------------------
# schemas/*.avsc


def _read_text(path: Path, rel: str) -> str:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise LayoutError(rel, "", f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise LayoutError(rel, "", f"cannot read: {e.strerror or e}") from None
    return text[1:] if text.startswith("\ufeff") else text


def _is_named(schema: Schema) -> bool:
    if isinstance(schema, UnionSchema):
        return all(b.fullname is not None for b in schema.branches)
    return schema.fullname is not None


def _types(names: Names) -> dict[str, Any]:
    # The registry's own dict: merging two parses (identical redefinitions across files) needs it.
    return names._types


def load_schemas(files: list[tuple[str, str]]) -> Names:
    """Parse `.avsc` texts [(relative file, text)] into one registry of named types.

    A file may refer to types of another, in any order: files with undefined names are retried until
    nothing changes. A full name defined in two files must have the same canonical text.
    """
    names = Names()
    defined_in: dict[str, str] = {}
    pending: list[tuple[str, Any]] = []
    for rel, text in files:
        try:
            pending.append((rel, lenient_json.loads(text)))
        except lenient_json.LenientJSONError as e:
            raise LayoutError(rel, "", str(e)) from None
    while pending:
        waiting: list[tuple[str, Any, UndefinedNameError]] = []
        for rel, value in pending:
            try:
                _parse_into(names, value, rel, defined_in)
            except UndefinedNameError as e:
                waiting.append((rel, value, e))
        if len(waiting) == len(pending):
            rel, _, err = waiting[0]
            raise LayoutError(rel, "", f"Invalid Avro schema: {err}")
        pending = [(rel, value) for rel, value, _ in waiting]
    return names


def _parse_into(names: Names, value: Any, rel: str, defined_in: dict[str, str]) -> None:
    scratch = Names()
    _types(scratch).update(_types(names))
    again: set[str] = set()  # names this file defines again
    while True:
        try:
            schema = parse_schema(value, scratch)
            break
        except UndefinedNameError:
            raise
        except AvroSchemaError as e:
            m = _REDEFINE.search(str(e))
            full = m.group(1) if m else None
            if full is None or full not in names or full in again:
                raise LayoutError(rel, "", f"Invalid Avro schema: {e}") from None
            again.add(full)
            del _types(scratch)[full]
    if not _is_named(schema):
        raise LayoutError(rel, "", "a schema file must hold a named type or an array of named types")
    for full in sorted(again):
        mine, theirs = scratch.get(full), names.get(full)
        assert mine is not None and theirs is not None
        if canonical_text(mine) != canonical_text(theirs):
            raise LayoutError(
                rel, "", f"{full} is also defined in {defined_in[full]} with a different schema"
            )
    for full, schema_ in scratch.items():
        if full not in names:
            _types(names)[full] = schema_
            defined_in[full] = rel


# ---------------------------------------------------------------------------------------------------
# Directories


def load_instance(root: Path | str, name: str) -> Instance:
    """Load `root/<name>/`: its `schemas/*.avsc`, then every `*.json` layout."""
    directory = Path(root) / name
    instance = Instance(name)
    layout_files: list[Path] = []
    schemas_dir: Path | None = None
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        rel = f"{name}/{entry.name}"
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name == "schemas":
                schemas_dir = entry
                continue
            raise LayoutError(
                rel, "", "unexpected directory in an instance directory (only schemas/ may be there)"
            )
        if entry.name.endswith(".json"):
            layout_files.append(entry)
        else:
            log.warning("%s: ignored: not a layout file (*.json)", rel)
    if schemas_dir is not None:
        avsc: list[tuple[str, str]] = []
        for entry in sorted(schemas_dir.iterdir(), key=lambda p: p.name):
            rel = f"{name}/schemas/{entry.name}"
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.name.endswith(".avsc"):
                avsc.append((rel, _read_text(entry, rel)))
            else:
                log.warning("%s: ignored: not a schema file (*.avsc)", rel)
        instance.schemas = load_schemas(avsc)
    for path in layout_files:
        rel = f"{name}/{path.name}"
        layout = load_layout(_read_text(path, rel), file=rel, names=instance.schemas)
        instance.tables[layout.name] = layout
        instance.files[layout.name] = rel
        instance.columns[layout.name] = ColumnNames(layout)
    return instance


def load_layout_dir(path: Path | str) -> dict[str, Instance]:
    """Every instance of a layouts directory (layouts.md §1), sorted by name."""
    root = Path(path)
    if not root.is_dir():
        raise LayoutError(str(path), "", "the layouts directory does not exist or is not a directory")
    instances: dict[str, Instance] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not _INSTANCE_NAME.fullmatch(entry.name):
                raise LayoutError(
                    entry.name, "", "invalid instance directory name: instance names match [a-zA-Z0-9_]+"
                )
            instances[entry.name] = load_instance(root, entry.name)
        else:
            log.warning("%s: ignored: not an instance directory", entry.name)
    return instances


def check_schema_uids(instance: Instance, known: Callable[[int], bool]) -> None:
    """Check the `uid` AvroSchema references of AVRO columns against the instance schema table
    (`known(uid)`); LayoutError "unknown schema uid n" for the first one that is not there."""
    for table, layout in instance.tables.items():
        file = instance.files.get(table, table)
        for i, lg in enumerate(layout.effective["locality_groups"]):
            for j, fam in enumerate(lg["families"]):
                p = f"locality_groups[{i}].families[{j}]"
                cells = []
                if fam["map_schema"] is not None:
                    cells.append((f"{p}.map_schema", fam["map_schema"]["org.kiji.schema.avro.CellSchema"]))
                for k, col in enumerate(fam["columns"]):
                    cells.append((f"{p}.columns[{k}].column_schema", col["column_schema"]))
                for cp, cs in cells:
                    if cs["type"] != "AVRO":
                        continue
                    refs = []
                    if cs["default_reader"] is not None:
                        refs.append((f"{cp}.default_reader", cs["default_reader"]))
                    writers = cs["writers"]
                    if writers is not None and cs["avro_validation_policy"] == "STRICT":
                        refs.extend((f"{cp}.writers[{n}]", w) for n, w in enumerate(writers["array"]))
                    for rp, ref in refs:
                        ref = ref.get("org.kiji.schema.avro.AvroSchema", ref)
                        uid = ref["uid"]
                        if uid is not None and not known(uid["long"]):
                            raise LayoutError(file, f"{rp}.uid", f"unknown schema uid {uid['long']}")
