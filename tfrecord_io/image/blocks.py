"""Arrays of patches that live in chunks (dask), walked one block of patches at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["is_chunked", "iter_chunked_patches"]


def is_chunked(patches: Any) -> bool:
    """Return True for a dask array (or any chunked array dask knows how to compute)."""
    return (
        hasattr(patches, "__dask_graph__")
        and hasattr(patches, "blocks")
        and hasattr(patches, "ndim")
    )


def iter_chunked_patches(patches: Any) -> Iterable[Any]:
    """Return ``patches`` unchanged, or a dask array ``(N, ...)`` as an iterator of its patches.

    A dask array is rechunked so that each block holds whole patches (only the first axis is
    split), then computed one block at a time: memory stays at one block of patches, whatever
    the number of patches. dask is only touched when given a dask array.
    """
    if not is_chunked(patches):
        return patches  # type: ignore[no-any-return]
    return _iter_blocks(patches)


def _iter_blocks(patches: Any) -> Iterator[Any]:
    if patches.ndim > 1:
        patches = patches.rechunk({axis: -1 for axis in range(1, patches.ndim)})
    for n in range(patches.numblocks[0]):
        yield from patches.blocks[n].compute()
