"""Kiji column names ⇄ HBase family and qualifier bytes (encodings.md §2).

`ColumnNames` is built once per table and sits on the per-cell path of every read, so every lookup
is a dict hit on precomputed keys; nothing is formatted or parsed per cell except map-family
qualifiers (and, under SHORT, ColumnId text that is not in its shortest form).
"""

from __future__ import annotations

from collections.abc import Iterable

from kijirest.layouts.model import COLUMN_ID_ALPHABET, CellSpec, Column, Family, LocalityGroup, TableLayout
from kijirest.store.base import ColumnSelector, FamilySpec

_DIGIT = {c: i for i, c in enumerate(COLUMN_ID_ALPHABET)}


def column_id_text(n: int) -> str:
    """ColumnId text: base 64, least significant digit first (0 = "A", 64 = "AB")."""
    if n < 0:
        raise ValueError(f"column ids are non-negative, got {n}")
    out = []
    while True:
        n, digit = divmod(n, 64)
        out.append(COLUMN_ID_ALPHABET[digit])
        if n == 0:
            return "".join(out)


def parse_column_id(text: str) -> int:
    """The id of ColumnId text; trailing "A"s do not change it ("B", "BA", "BAA" are all 1)."""
    if not text:
        raise ValueError("empty column id")
    value = 0
    for ch in reversed(text):
        digit = _DIGIT.get(ch)
        if digit is None:
            raise ValueError(f"invalid character {ch!r} in column id {text!r}")
        value = value * 64 + digit
    return value


def hbase_table_name(instance: str, table: str) -> str:
    """The HBase table holding Kiji table `table` of instance `instance`."""
    return f"kiji.{instance}.table.{table}"


class UnknownColumnError(KeyError):
    """A family or column name that the table layout does not declare."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


#: what a stored cell maps to: (family, qualifier as Kiji shows it, cell spec)
KijiColumn = tuple[Family, str, CellSpec]


class ColumnNames:
    """The column-name translation of one table, precomputed from its layout.

    Names given by users go through `family()` / `column()` (aliases resolve to primary names);
    `hbase_column()` maps a Kiji column to HBase bytes and `kiji_column()` maps stored bytes back.
    """

    def __init__(self, layout: TableLayout) -> None:
        self.layout = layout
        self.translator = layout.column_name_translator
        short = self.translator == "SHORT"
        self._families: dict[str, Family] = {}
        self._columns: dict[tuple[str, str], Column] = {}  # (family primary name, name or alias)
        self._hfamily: dict[str, bytes] = {}  # family primary name → HBase family
        self._prefix: dict[str, bytes] = {}  # family primary name → qualifier prefix ("" for native)
        self._group: dict[tuple[bytes, bytes], KijiColumn] = {}  # exact HBase column of a group column
        self._to_hbase: dict[tuple[str, str], tuple[bytes, bytes]] = {}  # group column → HBase column
        self._maps: dict[tuple[bytes, bytes], Family] = {}  # (HBase family, part before ':') → map family
        # SHORT: (lg id, family id) → family, (family name, column id) → column
        self._family_by_id: dict[tuple[bytes, int], Family] = {}
        self._column_by_id: dict[tuple[str, int], Column] = {}
        self._native: dict[bytes, Family] = {}  # HBASE_NATIVE: HBase family → family
        self._family_specs: list[FamilySpec] = []
        for lg in layout.locality_groups:
            hfam = self._lg_hbase_name(lg)
            self._family_specs.append(
                FamilySpec(
                    name=hfam,
                    max_versions=lg.max_versions,
                    ttl_seconds=lg.ttl_seconds,
                    in_memory=lg.in_memory,
                    compression=lg.compression_type,
                    bloom_filter=lg.bloom_type or "ROW",
                    block_size=lg.block_size,
                )
            )
            for fam in lg.families:
                for name in (fam.name, *fam.aliases):
                    self._families[name] = fam
                self._hfamily[fam.name] = hfam
                if self.translator == "HBASE_NATIVE":
                    prefix_text = ""
                    self._native[hfam] = fam
                else:
                    prefix_text = column_id_text(fam.id) if short else fam.name
                    self._family_by_id[(hfam, fam.id)] = fam
                prefix = prefix_text.encode() + b":" if prefix_text else b""
                self._prefix[fam.name] = prefix
                if fam.is_map:
                    self._maps[(hfam, prefix_text.encode())] = fam
                for col in fam.columns:
                    for name in (col.name, *col.aliases):
                        self._columns[(fam.name, name)] = col
                    self._column_by_id[(fam.name, col.id)] = col
                    qual = prefix + (column_id_text(col.id) if short else col.name).encode()
                    self._group[(hfam, qual)] = (fam, col.name, col.cell)
                    self._to_hbase[(fam.name, col.name)] = (hfam, qual)

    def _lg_hbase_name(self, lg: LocalityGroup) -> bytes:
        if self.translator == "SHORT":
            return column_id_text(lg.id).encode()
        return lg.name.encode()

    # -- user names -----------------------------------------------------------------------------
    @property
    def families(self) -> Iterable[Family]:
        """Every family, in layout order."""
        for lg in self.layout.locality_groups:
            yield from lg.families

    def family(self, name: str) -> Family:
        """The family named `name` (primary name or alias); UnknownColumnError if none."""
        fam = self._families.get(name)
        if fam is None:
            raise UnknownColumnError(f"unknown family '{name}' in table '{self.layout.name}'")
        return fam

    def column(self, family: Family | str, name: str) -> Column:
        """The declared column `name` (primary name or alias) of a group family."""
        fam = family if isinstance(family, Family) else self.family(family)
        col = self._columns.get((fam.name, name))
        if col is None:
            if fam.is_map:
                raise UnknownColumnError(f"family '{fam.name}' is a map-type family without declared columns")
            raise UnknownColumnError(f"unknown column '{fam.name}:{name}' in table '{self.layout.name}'")
        return col

    def cell_spec(self, family: Family | str, qualifier: str) -> CellSpec:
        """The cell schema of a column: the map family's for any qualifier, else the declared column's."""
        fam = family if isinstance(family, Family) else self.family(family)
        if fam.map_cell is not None:
            return fam.map_cell
        return self.column(fam, qualifier).cell

    # -- Kiji → HBase ---------------------------------------------------------------------------
    def hbase_family(self, family: Family | str) -> bytes:
        """The HBase family (locality group) holding a Kiji family."""
        fam = family if isinstance(family, Family) else self.family(family)
        return self._hfamily[fam.name]

    def hbase_column(self, family: Family | str, qualifier: str) -> tuple[bytes, bytes]:
        """(HBase family, HBase qualifier) of a Kiji column; group columns accept aliases."""
        fam = family if isinstance(family, Family) else self.family(family)
        if fam.map_cell is not None:
            return self._hfamily[fam.name], self._prefix[fam.name] + qualifier.encode()
        col = self.column(fam, qualifier)
        return self._to_hbase[(fam.name, col.name)]

    def family_selector(self, family: Family | str) -> ColumnSelector:
        """Selects every cell of a Kiji family: its locality group's HBase family, restricted to the
        family's qualifier prefix unless the family is the whole HBase family (HBASE_NATIVE)."""
        fam = family if isinstance(family, Family) else self.family(family)
        prefix = self._prefix[fam.name]
        return ColumnSelector(family=self._hfamily[fam.name], prefix=prefix or None)

    def column_selector(self, family: Family | str, qualifier: str) -> ColumnSelector:
        """Selects one Kiji column."""
        hfam, hqual = self.hbase_column(family, qualifier)
        return ColumnSelector(family=hfam, qualifier=hqual)

    def family_specs(self) -> list[FamilySpec]:
        """The HBase families to create the table with (layouts.md §7), in locality group order."""
        return list(self._family_specs)

    # -- HBase → Kiji ---------------------------------------------------------------------------
    def kiji_column(self, hfamily: bytes, hqualifier: bytes) -> KijiColumn | None:
        """(family, qualifier, cell spec) of a stored cell; None when it maps to no layout column."""
        hit = self._group.get((hfamily, hqualifier))
        if hit is not None:
            return hit
        if self.translator == "HBASE_NATIVE":
            return None  # every declared column is in _group; native families are group-type only
        left, sep, right = hqualifier.partition(b":")
        if not sep:
            return None
        fam = self._maps.get((hfamily, left))
        if fam is not None:
            try:
                return fam, right.decode(), fam.map_cell  # type: ignore[return-value]
            except UnicodeDecodeError:
                return None
        if self.translator != "SHORT":
            return None
        # a non-canonical ColumnId spelling ("BA" for "B")
        try:
            fam = self._family_by_id.get((hfamily, parse_column_id(left.decode("ascii"))))
        except (UnicodeDecodeError, ValueError):
            return None
        if fam is None:
            return None
        if fam.map_cell is not None:
            try:
                return fam, right.decode(), fam.map_cell
            except UnicodeDecodeError:
                return None
        try:
            col = self._column_by_id.get((fam.name, parse_column_id(right.decode("ascii"))))
        except (UnicodeDecodeError, ValueError):
            return None
        if col is None:
            return None
        return fam, col.name, col.cell
