"""The ``tfrecord-io`` command: argument parsing and reporting around the library's tools.

No logic lives here: each command parses its arguments, calls one tool and reports. Errors
from the library become a one-line message and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from tfrecord_io.errors import TFRecordIOError
from tfrecord_io.gdal import translate, vrt
from tfrecord_io.image import tools

__all__ = ["main"]


@contextmanager
def _reported() -> Iterator[None]:
    """Turn library errors into click's one-line error and exit status 1."""
    try:
        yield
    except TFRecordIOError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _progress(quiet: bool, label: str) -> Iterator[Callable[[float], None] | None]:
    if quiet:
        yield None
        return
    bar: Any = click.progressbar(length=1000, label=label, file=click.get_text_stream("stderr"))  # type: ignore[operator]
    with bar:
        done = [0]

        def update(fraction: float) -> None:
            step = int(fraction * 1000) - done[0]
            if step > 0:
                bar.update(step)
                done[0] += step

        yield update


def _kernel(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.replace("x", ",").split(",")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"expected K or X,Y, not {value!r}") from None
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    raise click.BadParameter(f"expected K or X,Y, not {value!r}")


_kernel_option = click.option(
    "--kernel-size",
    "kernel_size",
    default=None,
    help="The export's kernelSize as K or X,Y (inferred from the records when not given).",
)


def _open_options(kernel_size: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    kernel = _kernel(kernel_size)
    if kernel is not None:
        options["kernel_size"] = kernel
    return options


@click.group("tfrecord", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfrecord_io")
def main() -> None:
    """Earth Engine TFRecord image exports as rasters."""


@main.command("info")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON, like gdalinfo -json.")
@_kernel_option
def info_command(path: str, as_json: bool, kernel_size: str | None) -> None:
    """Describe an export (its folder, mixer or a shard), like gdalinfo."""
    with _reported():
        description = tools.info(path, **_open_options(kernel_size))
    if as_json:
        click.echo(json.dumps(description, indent=2))
    else:
        click.echo(tools.format_info(description))


def _parse_creation_options(items: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, not {item!r}", param_hint="-co")
        options[name] = value
    return options


@main.command("translate")
@click.argument("src", type=click.Path(exists=True))
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
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_kernel_option
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
    kernel_size: str | None,
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
    with _reported(), _progress(quiet, f"Writing {dst}") as progress:
        translate.translate(
            src,
            dst,
            driver=driver,
            creation_options=_parse_creation_options(creation_options),
            subset=subset,
            overwrite=overwrite,
            progress=progress,
            **_open_options(kernel_size),
        )


@main.command("vrt")
@click.argument("src", type=click.Path(exists=True))
@click.argument("dst", type=click.Path(), required=False)
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@_kernel_option
def vrt_command(src: str, dst: str | None, overwrite: bool, kernel_size: str | None) -> None:
    """Write a GDAL VRT for an export (PREFIX.vrt beside it by default).

    GDAL, rasterio and QGIS then read the export through tfrecord_io's pixel function, with the
    configuration that `tfrecord-io doctor` prints.
    """
    with _reported():
        if dst is not None and os.path.exists(dst) and not overwrite:
            raise click.ClickException(f"'{dst}' exists: pass --overwrite to replace it")
        path = vrt.build_vrt(src, dst, **_open_options(kernel_size))
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
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_kernel_option
def validate_command(path: str, as_json: bool, kernel_size: str | None) -> None:
    """Check every record of an export; exit status 1 when there is any problem."""
    problems = tools.validate(path, **_open_options(kernel_size))
    if as_json:
        click.echo(
            json.dumps(
                {"path": path, "valid": not problems, "problems": [p.to_dict() for p in problems]},
                indent=2,
            )
        )
    else:
        for problem in problems:
            click.echo(f"{problem.error}: {problem.message}")
        click.echo(f"{path}: {'valid' if not problems else f'{len(problems)} problem(s)'}")
    if problems:
        raise SystemExit(1)
