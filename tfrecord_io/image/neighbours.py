"""Check that neighbouring tiles agree where their kernel margins overlap.

The format carries no patch index: swapped shards, or a dropped record next to a duplicated
one, read as a permuted mosaic of the right size. But with a kernel above 1 each tile stores
``floor(k/2)`` pixels of its neighbours on each side [doc], so tile ``(row, col)`` and tile
``(row, col + 1)`` hold the same ``2 * margin_x`` columns, and likewise down the rows. Where
they differ, the records are not in their places.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from tfrecord_io.image.grid import PatchGrid

__all__ = ["Disagreement", "iter_disagreements"]


@dataclass(frozen=True)
class Disagreement:
    """Two neighbouring patches whose overlapping margins differ.

    Attributes
    ----------
    first, second : int
        Patch indexes: ``second`` is right of or below ``first``.
    side : str
        ``"right"`` or ``"below"``: where ``second`` is.
    """

    first: int
    second: int
    side: str


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(
        np.array_equal(x, y, equal_nan=x.dtype.kind == "f") for x, y in zip(a, b, strict=True)
    )


def iter_disagreements(
    grid: PatchGrid, tiles: Iterable[tuple[int, tuple[np.ndarray, ...]]]
) -> Iterator[Disagreement]:
    """Yield each pair of neighbouring tiles whose shared margins differ, in export order.

    Parameters
    ----------
    grid : PatchGrid
        The export's grid, with its kernel margins.
    tiles : iterable of (int, tuple of numpy.ndarray)
        ``(index, tile)`` in export order, each tile one ``(depth, tile_height, tile_width)``
        array per feature; indexes may be missing (a partial export).

    Yields
    ------
    Disagreement
        One per pair that differs; nothing when the grid has no margins.
    """
    mx, my = grid.margin_x, grid.margin_y
    pw, ph = grid.patch_width, grid.patch_height
    if not mx and not my:
        return
    # The strip each tile shares with the tile below it, kept for one row of patches.
    bottoms: dict[int, tuple[np.ndarray, ...]] = {}
    right: tuple[int, tuple[np.ndarray, ...]] | None = None
    for index, tile in tiles:
        row, col = divmod(index, grid.patches_per_row)
        left = right if right is not None and right[0] == index - 1 and col > 0 else None
        if left is not None and not _same(left[1], tuple(t[:, :, : 2 * mx] for t in tile)):
            yield Disagreement(index - 1, index, "right")
        right = (index, tuple(t[:, :, pw : pw + 2 * mx].copy() for t in tile)) if mx else None
        above = bottoms.pop(index - grid.patches_per_row, None) if row > 0 else None
        if above is not None and not _same(above, tuple(t[:, : 2 * my, :] for t in tile)):
            yield Disagreement(index - grid.patches_per_row, index, "below")
        if my:
            bottoms[index] = tuple(t[:, ph : ph + 2 * my, :].copy() for t in tile)
