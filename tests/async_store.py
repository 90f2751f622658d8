"""`AsyncStore` with the async wrappers only tests use (table admin, puts, increments).

The gateway never awaits these (it writes through `AsyncStore.run`), so they live here rather than
in `kijirest.store.runner`; each runs where the store's calls run, as the gateway's wrappers do.
"""

from __future__ import annotations

from collections.abc import Sequence

from kijirest.store import runner
from kijirest.store.base import Cell, FamilySpec


class AsyncStore(runner.AsyncStore):
    async def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        return await self._call(self.store.create_table, table, families)

    async def list_tables(self) -> list[str]:
        return await self._call(self.store.list_tables)

    async def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        return await self._call(self.store.table_families, table)

    async def delete_table(self, table: str) -> None:
        await self._call(self.store.delete_table, table)

    async def put_row(self, table: str, key: bytes, cells: Sequence[Cell]) -> None:
        await self._call(self.store.put_row, table, key, cells)

    async def put_rows(self, table: str, rows: Sequence[tuple[bytes, Sequence[Cell]]]) -> None:
        await self._call(self.store.put_rows, table, rows)

    async def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        return await self._call(self.store.increment, table, key, family, qualifier, amount)
