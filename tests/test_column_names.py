"""Column names: ColumnId text, HBase table names and the three translators (encodings.md §2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kijirest.layouts.columns import (
    ColumnNames,
    UnknownColumnError,
    column_id_text,
    hbase_table_name,
    parse_column_id,
)
from kijirest.layouts.loader import load_layout, load_layout_dir
from kijirest.layouts.model import FOREVER_TTL, TableLayout
from kijirest.store.base import ColumnSelector, FamilySpec

DATA = Path(__file__).parent / "data" / "layouts"


@pytest.fixture(scope="module")
def instances() -> dict[str, Any]:
    return load_layout_dir(DATA)


@pytest.fixture(scope="module")
def users(instances: dict[str, Any]) -> ColumnNames:
    return ColumnNames(instances["shop"].tables["users"])


# ---------------------------------------------------------------------------------------------------
# ColumnId text


@pytest.mark.parametrize(("n", "text"), [(0, "A"), (1, "B"), (63, "/"), (64, "AB"), (1000, "oP")])
def test_column_id_vectors(n: int, text: str) -> None:
    assert column_id_text(n) == text
    assert parse_column_id(text) == n


def test_trailing_zero_digits_do_not_change_the_value() -> None:
    assert parse_column_id("B") == parse_column_id("BA") == parse_column_id("BAA") == 1


def test_column_id_round_trip() -> None:
    for n in [*range(5000), 2**31 - 1, 2**40]:
        assert parse_column_id(column_id_text(n)) == n


@pytest.mark.parametrize("text", ["", "B:", "-", "é", "A B"])
def test_invalid_column_id_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_column_id(text)


def test_negative_column_id() -> None:
    with pytest.raises(ValueError):
        column_id_text(-1)


def test_hbase_table_name() -> None:
    assert hbase_table_name("shop", "users") == "kiji.shop.table.users"


# ---------------------------------------------------------------------------------------------------
# SHORT: the layouts.md §9 example


def test_section_9_hbase_columns(users: ColumnNames) -> None:
    assert users.hbase_column("profile", "full_name") == (b"B", b"B:B")
    assert users.hbase_column("profile", "email") == (b"B", b"B:C")
    assert users.hbase_column("profile", "logins") == (b"B", b"B:D")
    assert users.hbase_column("prefs", "theme") == (b"B", b"C:theme")
    assert users.hbase_column("prefs", "a:b é") == (b"B", "C:a:b é".encode())
    assert users.hbase_family("prefs") == b"B"


def test_section_9_reverse_mapping(users: ColumnNames) -> None:
    profile, prefs = users.family("profile"), users.family("prefs")
    full_name = users.column("profile", "full_name")
    assert users.kiji_column(b"B", b"B:B") == (profile, "full_name", full_name.cell)
    assert users.kiji_column(b"B", b"B:D")[1] == "logins"
    assert users.kiji_column(b"B", b"C:theme") == (prefs, "theme", prefs.map_cell)
    # split at the first ':' only: a map qualifier may hold ':'
    assert users.kiji_column(b"B", b"C:a:b") == (prefs, "a:b", prefs.map_cell)
    assert users.kiji_column(b"B", "C:é".encode()) == (prefs, "é", prefs.map_cell)
    assert users.kiji_column(b"B", b"C:") == (prefs, "", prefs.map_cell)


def test_reverse_mapping_of_non_canonical_ids(users: ColumnNames) -> None:
    assert users.kiji_column(b"B", b"BA:BAA")[1] == "full_name"
    assert users.kiji_column(b"B", b"CA:x")[:2] == (users.family("prefs"), "x")


@pytest.mark.parametrize(
    ("family", "qualifier"),
    [
        (b"B", b"B:E"),  # no column 4
        (b"B", b"D:x"),  # no family 3
        (b"C", b"B:B"),  # no locality group 2
        (b"B", b"B"),  # no ':'
        (b"B", b""),
        (b"B", b"B:\xff"),
        (b"B", b"C:\xff"),  # map qualifier that is not UTF-8
        (b"B", b"?:B"),
        (b"B", b"profile:full_name"),  # an IDENTITY name under SHORT
    ],
)
def test_cells_mapping_to_no_column(users: ColumnNames, family: bytes, qualifier: bytes) -> None:
    assert users.kiji_column(family, qualifier) is None


def test_selectors(users: ColumnNames) -> None:
    assert users.family_selector("profile") == ColumnSelector(b"B", prefix=b"B:")
    assert users.family_selector("prefs") == ColumnSelector(b"B", prefix=b"C:")
    assert users.column_selector("profile", "email") == ColumnSelector(b"B", qualifier=b"B:C")
    assert users.column_selector("prefs", "theme") == ColumnSelector(b"B", qualifier=b"C:theme")


def test_family_specs(users: ColumnNames, instances: dict[str, Any]) -> None:
    assert users.family_specs() == [
        FamilySpec(
            b"B",
            max_versions=5,
            ttl_seconds=FOREVER_TTL,
            in_memory=False,
            compression="GZ",
            bloom_filter="ROW",
            block_size=None,
        )
    ]
    samples = ColumnNames(instances["shop"].tables["samples"])
    assert samples.family_specs() == [
        FamilySpec(
            b"B",
            max_versions=10,
            ttl_seconds=FOREVER_TTL,
            in_memory=False,
            compression="NONE",
            bloom_filter="ROWCOL",
            block_size=65536,
        ),
        FamilySpec(
            b"C",
            max_versions=1,
            ttl_seconds=3600,
            in_memory=True,
            compression="GZ",
            bloom_filter="ROW",
            block_size=None,
        ),
    ]


def short_layout() -> TableLayout:
    """Locality group id 2, family id 1, column id 3: the `C:B:D` example of encodings.md §2.3."""
    doc = {
        "name": "t",
        "version": "layout-1.5",
        "keys_format": {"encoding": "RAW"},
        "locality_groups": [
            {
                "id": 2,
                "name": "default",
                "aliases": ["dflt"],
                "in_memory": False,
                "max_versions": 1,
                "ttl_seconds": 100,
                "compression_type": "NONE",
                "families": [
                    {
                        "id": 1,
                        "name": "info",
                        "aliases": ["i"],
                        "columns": [
                            {
                                "id": 3,
                                "name": "name",
                                "aliases": ["n", "nm"],
                                "column_schema": {"type": "INLINE", "value": '"string"'},
                            },
                            {"name": "age", "column_schema": {"type": "INLINE", "value": '"int"'}},
                        ],
                    }
                ],
            }
        ],
    }
    return load_layout(orjson.dumps(doc).decode(), file="inst/t.json")


def test_short_example_c_b_d() -> None:
    names = ColumnNames(short_layout())
    assert names.hbase_column("info", "name") == (b"C", b"B:D")
    assert names.hbase_column("info", "age") == (b"C", b"B:B")  # implicit id 1
    assert names.kiji_column(b"C", b"B:D")[1] == "name"
    assert names.family_specs()[0].name == b"C"
    assert names.family_specs()[0].ttl_seconds == 100


def test_aliases_resolve_to_primary_names() -> None:
    names = ColumnNames(short_layout())
    assert names.family("i") is names.family("info")
    assert names.column("i", "nm") is names.column("info", "name")
    assert names.hbase_column("i", "n") == (b"C", b"B:D")
    assert names.kiji_column(b"C", b"B:D")[:2] == (names.family("info"), "name")  # responses: primary names
    assert [f.name for f in names.families] == ["info"]


def test_unknown_names() -> None:
    names = ColumnNames(short_layout())
    with pytest.raises(UnknownColumnError) as info:
        names.family("nope")
    assert str(info.value) == "unknown family 'nope' in table 't'"
    with pytest.raises(KeyError):  # UnknownColumnError is a KeyError
        names.hbase_column("info", "nope")
    with pytest.raises(UnknownColumnError, match=r"^unknown column 'info:nope' in table 't'$"):
        names.column_selector("info", "nope")
    with pytest.raises(UnknownColumnError, match="default"):  # a locality group is not a family
        names.family("default")


def test_cell_spec_lookup(users: ColumnNames) -> None:
    assert users.cell_spec("prefs", "anything") is users.family("prefs").map_cell
    assert users.cell_spec("profile", "logins").type == "COUNTER"
    with pytest.raises(UnknownColumnError):
        users.cell_spec("profile", "nope")
    with pytest.raises(UnknownColumnError, match="map-type"):
        users.column("prefs", "theme")


# ---------------------------------------------------------------------------------------------------
# IDENTITY and HBASE_NATIVE


def test_identity(instances: dict[str, Any]) -> None:
    names = ColumnNames(instances["native"].tables["identity"])
    info, counts = names.family("info"), names.family("counts")
    assert names.hbase_column("info", "name") == (b"main", b"info:name")
    assert names.hbase_column("counts", "x:y") == (b"main", b"counts:x:y")
    assert names.kiji_column(b"main", b"info:name") == (info, "name", info.columns[0].cell)
    assert names.kiji_column(b"main", b"counts:x:y") == (counts, "x:y", counts.map_cell)
    assert names.kiji_column(b"main", b"info:other") is None
    assert names.kiji_column(b"main", b"B:B") is None
    assert names.kiji_column(b"other", b"info:name") is None
    assert names.family_selector("info") == ColumnSelector(b"main", prefix=b"info:")
    assert names.family_selector("counts") == ColumnSelector(b"main", prefix=b"counts:")
    assert [s.name for s in names.family_specs()] == [b"main"]


def test_hbase_native(instances: dict[str, Any]) -> None:
    names = ColumnNames(instances["native"].tables["natives"])
    cf, meta = names.family("cf"), names.family("meta")
    assert names.hbase_column("cf", "title") == (b"cf", b"title")
    assert names.hbase_column("meta", "updated") == (b"meta", b"updated")
    assert names.kiji_column(b"cf", b"title") == (cf, "title", cf.columns[0].cell)
    assert names.kiji_column(b"meta", b"updated")[0] is meta
    assert names.kiji_column(b"cf", b"updated") is None
    assert names.kiji_column(b"cf", b"cf:title") is None
    assert names.family_selector("cf") == ColumnSelector(b"cf")  # the whole HBase family
    assert names.column_selector("cf", "raw") == ColumnSelector(b"cf", qualifier=b"raw")
    specs = names.family_specs()
    assert [(s.name, s.max_versions, s.in_memory, s.bloom_filter) for s in specs] == [
        (b"cf", 1, False, "ROW"),
        (b"meta", 2, True, "NONE"),
    ]
