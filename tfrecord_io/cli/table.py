"""The ``tfrecord-io table`` commands: Earth Engine table exports described and converted."""

from __future__ import annotations

import json

import click

from tfrecord_io.cli.support import (
    open_options,
    overwrite_option,
    progress_bar,
    quiet_option,
    reported,
    storage_option,
)

__all__ = ["table_group"]


@click.group("table")
def table_group() -> None:
    """Earth Engine table exports (Export.table with fileFormat TFRecord)."""


@table_group.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def table_info_command(path: str, as_json: bool) -> None:
    """Describe a table export (a file, a folder or a glob): rows and columns."""
    from tfrecord_io.table import convert

    with reported():
        description = convert.table_info(path)
    if as_json:
        click.echo(json.dumps(description, indent=2))
    else:
        click.echo(convert.format_table_info(description))


@table_group.command("convert")
@click.argument("src")
@click.argument("dst")
@click.option(
    "-f",
    "--format",
    "format_name",
    default=None,
    help="CSV, Parquet, GeoParquet, GPKG, GeoJSON, FlatGeobuf or TFRecord (default: from DST's "
    "extension).",
)
@click.option("--x", "x", default=None, help="Column of the points' x (longitude).")
@click.option("--y", "y", default=None, help="Column of the points' y (latitude).")
@click.option("--crs", default=None, help="CRS of the points (default EPSG:4326).")
@overwrite_option
@quiet_option
@storage_option
def table_convert_command(
    src: str,
    dst: str,
    format_name: str | None,
    overwrite: bool,
    quiet: bool,
    storage_items: tuple[str, ...],
    **points: str | None,
) -> None:
    """Convert a table export to CSV, (Geo)Parquet, GeoPackage, GeoJSON or FlatGeobuf, or back.

    Any of these formats, or any vector file OGR reads, becomes a table TFRecord ready for
    `earthengine upload table` when DST ends in .tfrecord.gz (or -f TFRecord). SRC (a table
    export) and DST may be gs://, s3:// or memory:// URLs. ``points`` are --x, --y and --crs.
    """
    from tfrecord_io.table import convert

    with reported() as stderr, progress_bar(quiet, f"Writing {dst}", stderr) as progress:
        options = open_options(None, storage_items=storage_items)
        convert.convert_table(
            src,
            dst,
            format=format_name,
            overwrite=overwrite,
            progress=progress,
            **points,
            **options,
        )
