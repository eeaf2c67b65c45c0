"""The ``tfrecord-io`` command: argument parsing and reporting around the library's tools.

No logic lives here: each command parses its arguments, calls one tool and reports. Errors
from the library become a one-line message and a non-zero exit status.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import rasterio.errors

from tfrecord_io.errors import OptionError, TFRecordIOError
from tfrecord_io.format import storage
from tfrecord_io.gdal import translate, vrt
from tfrecord_io.gdal.cpl import gdal_errors
from tfrecord_io.gdal.overviews import build_overviews
from tfrecord_io.image import tools
from tfrecord_io.image.options import parse_kernel_size

__all__ = ["main"]


class _Stderr:
    """The process's stderr (file descriptor 2) captured into a file while a command runs.

    GDAL and libtiff print their messages straight to descriptor 2 (``ERROR 1: PROJ: ...``,
    ``_tiffWriteProc: No space left on device.``); capturing it lets an error be one line with
    their message folded in. What was captured is passed on when the command succeeds.
    """

    def __init__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by restore(), not a block)
        os.dup2(self._file.fileno(), 2)
        #: The user's stderr when it is a terminal (for a progress bar), else None.
        #: Set when what was captured is not to be passed on (the command reported it).
        self.discarded = False
        self.terminal: Any = os.fdopen(os.dup(self._saved), "w") if os.isatty(self._saved) else None

    def captured(self) -> str:
        """Return the text captured so far."""
        sys.stderr.flush()
        self._file.seek(0)
        return self._file.read().decode("utf-8", "replace")

    def restore(self) -> str:
        """Put stderr back and return the text captured."""
        text = self.captured()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        if self.terminal is not None:
            self.terminal.close()
        return text


@contextmanager
def _reported() -> Iterator[_Stderr]:
    """Turn errors into click's one-line error and exit status 1, GDAL's message folded in."""
    stderr = _Stderr()
    failed = True
    try:
        with gdal_errors() as gdal:
            try:
                yield stderr
                failed = False
            except (TFRecordIOError, OSError, rasterio.errors.RasterioError, MemoryError) as exc:
                message = str(exc) or type(exc).__name__
                printed = [
                    re.sub(r"^(ERROR|Warning) \d+: ", "", line.strip())
                    for line in stderr.captured().splitlines()
                    if line.strip()
                ]
                for extra in (gdal.failure(), printed[-1] if printed else None):
                    if extra and extra not in message:
                        message += f" (GDAL: {extra})"
                        break
                raise click.ClickException(" ".join(message.split())) from exc
    finally:
        text = stderr.restore()
        if not failed and not stderr.discarded and text:
            sys.stderr.write(text)


@contextmanager
def _progress(quiet: bool, label: str, stderr: _Stderr) -> Iterator[Callable[[float], None] | None]:
    """Show a progress bar on a terminal's stderr (never when stderr is a file or a pipe).

    On an error the bar's line is erased, so that the error is the only line left.
    """
    stream = stderr.terminal
    if quiet or stream is None:
        yield None
        return
    bar: Any = click.progressbar(length=1000, label=label, file=stream)  # type: ignore[operator]
    try:
        with bar:
            done = [0]

            def update(fraction: float) -> None:
                step = int(fraction * 1000) - done[0]
                if step > 0:
                    bar.update(step)
                    done[0] += step

            yield update
    except BaseException:
        stream.write("\r\033[K")
        stream.flush()
        raise


_kernel_option = click.option(
    "--kernel-size",
    "kernel_size",
    default=None,
    help="The export's kernelSize as K or X,Y (inferred from the records when not given).",
)


_storage_option = click.option(
    "--storage-option",
    "storage_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="fsspec storage option for a gs://, s3:// or https:// URL (repeatable); VALUE is "
    "JSON when it parses as JSON (true, 3, {...}), text otherwise. E.g. --storage-option "
    "token=anon, --storage-option anon=true.",
)


class _PathOrURL(click.ParamType):
    """A local path that must exist, or a URL (checked when it is opened)."""

    name = "path_or_url"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        if not storage.is_url(text) and not os.path.exists(text):
            self.fail(f"'{text}' does not exist.", param, ctx)
        return text


_PATH_OR_URL = _PathOrURL()


def _storage_options(items: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(
                f"expected NAME=VALUE, not {item!r}", param_hint="--storage-option"
            )
        try:
            options[name] = json.loads(value)
        except ValueError:
            options[name] = value
    return options


_mixer_option = click.option(
    "--mixer",
    "mixer",
    type=_PATH_OR_URL,
    default=None,
    help="The mixer JSON, when the export's files are renamed or it has none.",
)
_missing_option = click.option(
    "--allow-missing",
    "allow_missing",
    is_flag=True,
    help="Read a partial export: patches of missing shards are nodata.",
)


def _open_options(
    kernel_size: str | None,
    mixer: str | None = None,
    allow_missing: bool = False,
    storage_items: tuple[str, ...] = (),
) -> dict[str, Any]:
    try:
        kernel = parse_kernel_size(kernel_size)
    except OptionError as exc:
        raise click.BadParameter(str(exc), param_hint="--kernel-size") from None
    options: dict[str, Any] = {} if kernel is None else {"kernel_size": kernel}
    if mixer is not None:
        options["mixer"] = mixer
    if allow_missing:
        options["allow_missing"] = True
    if storage_items:
        options["storage_options"] = _storage_options(storage_items)
    return options


def _with_open_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command --kernel-size, --mixer, --allow-missing and --storage-option."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        kernel_size: str | None,
        mixer: str | None,
        allow_missing: bool,
        storage_items: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        options = _open_options(kernel_size, mixer, allow_missing, storage_items)
        command(*args, options=options, **kwargs)

    return _kernel_option(_mixer_option(_missing_option(_storage_option(wrapper))))


def _export_arg(paths: tuple[str, ...]) -> str | list[str]:
    """One path as given, several as a list of shards in export order."""
    return paths[0] if len(paths) == 1 else list(paths)


@click.group("tfrecord", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfrecord_io")
def main() -> None:
    """Earth Engine TFRecord image exports as rasters."""


@main.command("info")
@click.argument("paths", nargs=-1, required=True, type=_PATH_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, like gdalinfo -json.")
@_with_open_options
def info_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Describe an export (its folder, mixer, a shard or its shards in order; paths or URLs)."""
    with _reported():
        description = tools.info(_export_arg(paths), **options)
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
@click.argument("src", type=_PATH_OR_URL)
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
@_with_open_options
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
    with _reported() as stderr, _progress(quiet, f"Writing {dst}", stderr) as progress:
        translate.translate(
            src,
            dst,
            driver=driver,
            creation_options=_parse_creation_options(creation_options),
            subset=subset,
            overwrite=overwrite,
            progress=progress,
            **options,
        )


@main.command("vrt")
@click.argument("src", type=_PATH_OR_URL)
@click.argument("dst", type=click.Path(), required=False)
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
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
@_with_open_options
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
    with _reported():
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
@click.argument("paths", nargs=-1, required=True, type=_PATH_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_with_open_options
def validate_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Check every record of an export (paths or URLs); exit status 1 on any problem."""
    with _reported() as stderr:
        report = tools.ValidationReport.from_path(_export_arg(paths), **options)
        # GDAL's own lines about a problem (an unknown CRS) are in the report already.
        stderr.discarded = not report.valid
    click.echo(report.to_json() if as_json else report.to_text())
    if not report.valid:
        raise SystemExit(1)


@main.group("table")
def table_group() -> None:
    """Earth Engine table exports (Export.table with fileFormat TFRecord)."""


@table_group.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def table_info_command(path: str, as_json: bool) -> None:
    """Describe a table export (a file, a folder or a glob): rows and columns."""
    from tfrecord_io.table import convert

    with _reported():
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
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_storage_option
def table_convert_command(
    src: str,
    dst: str,
    format_name: str | None,
    x: str | None,
    y: str | None,
    crs: str | None,
    overwrite: bool,
    quiet: bool,
    storage_items: tuple[str, ...],
) -> None:
    """Convert a table export to CSV, (Geo)Parquet, GeoPackage, GeoJSON or FlatGeobuf, or back.

    Any of these formats, or any vector file OGR reads, becomes a table TFRecord ready for
    `earthengine upload table` when DST ends in .tfrecord.gz (or -f TFRecord). SRC (a table
    export) and DST may be gs://, s3:// or memory:// URLs.
    """
    from tfrecord_io.table import convert

    with _reported() as stderr, _progress(quiet, f"Writing {dst}", stderr) as progress:
        convert.convert_table(
            src,
            dst,
            format=format_name,
            x=x,
            y=y,
            crs=crs,
            overwrite=overwrite,
            progress=progress,
            **_open_options(None, storage_items=storage_items),
        )


@main.command("index")
@click.argument("path", type=_PATH_OR_URL)
@click.option("--overwrite", is_flag=True, help="Rebuild the index even if it is current.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@_with_open_options
def index_command(path: str, overwrite: bool, quiet: bool, options: dict[str, Any]) -> None:
    """Save the export's record index beside it (PREFIX-index.tfrindex).

    Every later open of the export, in any process, then reads a window without scanning the
    shards before it. A stale index (a shard changed) is ignored with a warning.
    """
    with _reported():
        sidecar = tools.build_index(path, overwrite=overwrite, **options)
    if not quiet:
        click.echo(sidecar)
