"""Place the shards of a partial export: where each present shard's records sit in the grid.

Earth Engine cuts shards by ``maxFileSize`` of uncompressed bytes and never splits a record
[doc], so when every record has one size, every shard but the last holds the same number of
records. One complete shard that is not the last then gives that number, and with it the first
record of every shard. Nothing else in the files says where a shard's records belong, so when
that reasoning does not apply the positions are refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfrecord_io.errors import MissingShardError

__all__ = ["place_shards"]


def place_shards(
    numbers: Sequence[int],
    counts: Sequence[int],
    sizes: set[int],
    total: int,
    where: str,
) -> list[int]:
    """Return the index of the first record of each present shard.

    Parameters
    ----------
    numbers : sequence of int
        Earth Engine's shard numbers of the shards present, ascending.
    counts : sequence of int
        Records in each of them.
    sizes : set of int
        The distinct payload sizes of every record present.
    total : int
        Records the mixer's grid needs.
    where : str
        The export's folder, for messages.

    Raises
    ------
    MissingShardError
        The positions cannot be known; the message says why.
    """
    cannot = f"'{where}': the positions of the shards present cannot be known:"
    if len(sizes) > 1:
        raise MissingShardError(
            f"{cannot} their records have {len(sizes)} different sizes, so the shards need not "
            "hold equal numbers of records. Download the missing shards."
        )
    # Every shard below the highest one present is not the last, so it is complete.
    full = {c for n, c in zip(numbers[:-1], counts[:-1], strict=True)}
    top, top_count = numbers[-1], counts[-1]
    if top_count == 0 or 0 in full:
        raise MissingShardError(f"{cannot} a shard present holds no record")
    candidates = set(full)
    if not full:
        # The highest shard is complete (it holds M records and more follow), or the last one
        # (top * M + its records == total, M at least its records).
        if (top + 1) * top_count <= total:
            candidates.add(top_count)
        if top and (total - top_count) % top == 0 and (total - top_count) // top > top_count:
            candidates.add((total - top_count) // top)
    if len(candidates) != 1:
        reason = (
            "the shards present hold different numbers of records"
            if len(full) > 1
            else f"shard {top} may be the last one (then holding fewer records than the others) "
            "or a complete one, and nothing tells which"
            if len(candidates) > 1
            else f"shard {top} with {top_count} records does not fit a grid of {total} records"
        )
        raise MissingShardError(f"{cannot} {reason}. Download the missing shards.")
    per_shard = candidates.pop()
    starts = [n * per_shard for n in numbers]
    if top_count > per_shard or starts[-1] + top_count > total:
        raise MissingShardError(
            f"{cannot} shard {top} holds {top_count} records, more than a shard of "
            f"{per_shard} records in a grid of {total} allows. The shards may belong to "
            "another export."
        )
    return starts
