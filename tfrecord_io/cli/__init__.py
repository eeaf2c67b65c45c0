"""The ``tfrecord-io`` command: argument parsing and reporting around the library's tools.

No logic lives here: each command parses its arguments, calls one tool and reports. Errors
from the library become a one-line message and a non-zero exit status
(:mod:`tfrecord_io.cli.support`). The image commands are here, the ``table`` group in
:mod:`tfrecord_io.cli.table`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from tfrecord_io.cli.support import (
    PATH_OR_URL,
    export_arg,
    overwrite_option,
    parse_creation_options,
    progress_bar,
    quiet_option,
    reported,
    with_open_options,
)
from tfrecord_io.cli.table import table_group
from tfrecord_io.gdal import translate, vrt
from tfrecord_io.gdal.overviews import build_overviews
from tfrecord_io.image import tools

__all__ = ["main"]


@click.group("tfrecord", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfrecord_io")
def main() -> None:
    """Earth Engine TFRecord image exports as rasters."""


main.add_command(table_group)


@main.command("info")
@click.argument("paths", nargs=-1, required=True, type=PATH_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, like gdalinfo -json.")
@with_open_options
def info_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Describe an export (its folder, mixer, a shard or its shards in order; paths or URLs)."""
    with reported():
        description = tools.info(export_arg(paths), **options)
    if as_json:
        click.echo(json.dumps(description, indent=2))
    else:
        click.echo(tools.format_info(description))


@main.command("translate")
@click.argument("src", type=PATH_OR_URL)
@click.argument("dst", type=click.Path())
@click.option(
    "-of",
    "driver",
    default="GTiff",
    show_default=True,
    help="Output format: a GDAL driver, or EETFRecord to write an export.",
)
@click.option(
    "-co",
    "creation_options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Creation option of the output driver (repeatable); for EETFRecord, a "
    "formatOptions key, e.g. -co patchDimensions=256,256.",
)
@click.option("-b", "bands", type=int, multiple=True, help="Band to keep (repeatable).")
@click.option(
    "-srcwin",
    "srcwin",
    type=float,
    nargs=4,
    default=None,
    metavar="XOFF YOFF XSIZE YSIZE",
    help="Pixel window of the source.",
)
@click.option(
    "-projwin",
    "projwin",
    type=float,
    nargs=4,
    default=None,
    metavar="ULX ULY LRX LRY",
    help="Georeferenced window of the source.",
)
@click.option("-ot", "out_type", default=None, help="Output type (Byte, Int16, Float32, ...).")
@click.option("-a_nodata", "nodata", type=float, default=None, help="Assign a nodata value.")
@click.option(
    "-outsize",
    "outsize",
    nargs=2,
    default=None,
    metavar="XSIZE[%] YSIZE[%]",
    help="Output size in pixels or percent (0 keeps the aspect ratio).",
)
@overwrite_option
@quiet_option
@with_open_options
def translate_command(
    src: str,
    dst: str,
    driver: str,
    creation_options: tuple[str, ...],
    bands: tuple[int, ...],
    srcwin: tuple[float, float, float, float] | None,
    projwin: tuple[float, float, float, float] | None,
    out_type: str | None,
    nodata: float | None,
    outsize: tuple[str, str] | None,
    overwrite: bool,
    quiet: bool,
    options: dict[str, Any],
) -> None:
    """Convert an export or a raster, like gdal_translate (-of EETFRecord writes an export)."""
    subset = translate.Subset(
        bands=bands or None,
        srcwin=srcwin,
        projwin=projwin,
        outsize=outsize,
        dtype=out_type,
        nodata=nodata,
    )
    with reported() as stderr, progress_bar(quiet, f"Writing {dst}", stderr) as progress:
        translate.translate(
            src,
            dst,
            driver=driver,
            creation_options=parse_creation_options(creation_options),
            subset=subset,
            overwrite=overwrite,
            progress=progress,
            **options,
        )


@main.command("vrt")
@click.argument("src", type=PATH_OR_URL)
@click.argument("dst", type=click.Path(), required=False)
@overwrite_option
@click.option(
    "--overviews",
    is_flag=True,
    help="Also write DST.ovr: GDAL overviews (2, 4, 8, ...), so zoomed-out views are fast.",
)
@click.option(
    "--resampling",
    type=click.Choice(["average", "nearest"]),
    default="average",
    show_default=True,
    help="How overview pixels are made.",
)
@with_open_options
def vrt_command(
    src: str,
    dst: str | None,
    overwrite: bool,
    overviews: bool,
    resampling: str,
    options: dict[str, Any],
) -> None:
    """Write a GDAL VRT for an export (PREFIX.vrt beside it by default; DST for a URL).

    GDAL, rasterio and QGIS then read the export through tfrecord_io's pixel function, with the
    configuration that `tfrecord-io doctor` prints.
    """
    with reported():
        if dst is not None and os.path.exists(dst) and not overwrite:
            raise click.ClickException(f"'{dst}' exists: pass --overwrite to replace it")
        path = vrt.build_vrt(src, dst, **options)
        if overviews:
            click.echo(build_overviews(path, resampling=resampling))  # type: ignore[arg-type]
    click.echo(path)


@main.command("doctor")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
def doctor_command(folders: tuple[str, ...]) -> None:
    """Check that GDAL can run tfrecord_io's pixel function here; say how to fix what cannot.

    Given FOLDERS, also finish or undo the writes into them whose process died.
    """
    from tfrecord_io.format.destination import recover_writes
    from tfrecord_io.gdal import doctor

    for folder in folders:
        for line in recover_writes(folder):
            click.echo(f"[fixed] {line}")
    checks = doctor.run_checks()
    for check in checks:
        click.echo(f"[{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
        if check.fix:
            click.echo("    fix: " + check.fix.replace("\n", "\n         "))
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@main.command("validate")
@click.argument("paths", nargs=-1, required=True, type=PATH_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_open_options
def validate_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Check every record of an export (paths or URLs); exit status 1 on any problem."""
    with reported() as stderr:
        report = tools.ValidationReport.from_path(export_arg(paths), **options)
        # GDAL's own lines about a problem (an unknown CRS) are in the report already.
        stderr.discarded = not report.valid
    click.echo(report.to_json() if as_json else report.to_text())
    if not report.valid:
        raise SystemExit(1)


@main.command("index")
@click.argument("path", type=PATH_OR_URL)
@click.option("--overwrite", is_flag=True, help="Rebuild the index even if it is current.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@with_open_options
def index_command(path: str, overwrite: bool, quiet: bool, options: dict[str, Any]) -> None:
    """Save the export's record index beside it (PREFIX-index.tfrindex).

    Every later open of the export, in any process, then reads a window without scanning the
    shards before it. A stale index (a shard changed) is ignored with a warning.
    """
    with reported():
        sidecar = tools.build_index(path, overwrite=overwrite, **options)
    if not quiet:
        click.echo(sidecar)
