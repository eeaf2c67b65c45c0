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
from tfrecord_io.gdal import translate, vrt
from tfrecord_io.gdal.cpl import gdal_errors
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


_mixer_option = click.option(
    "--mixer",
    "mixer",
    type=click.Path(exists=True, dir_okay=False),
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
    kernel_size: str | None, mixer: str | None = None, allow_missing: bool = False
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
    return options


def _with_open_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command --kernel-size, --mixer and --allow-missing, passed as ``options``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, kernel_size: str | None, mixer: str | None, allow_missing: bool, **kwargs: Any
    ) -> None:
        command(*args, options=_open_options(kernel_size, mixer, allow_missing), **kwargs)

    return _kernel_option(_mixer_option(_missing_option(wrapper)))


def _export_arg(paths: tuple[str, ...]) -> str | list[str]:
    """One path as given, several as a list of shards in export order."""
    return paths[0] if len(paths) == 1 else list(paths)


@click.group("tfrecord", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfrecord_io")
def main() -> None:
    """Earth Engine TFRecord image exports as rasters."""


@main.command("info")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON, like gdalinfo -json.")
@_with_open_options
def info_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Describe an export (its folder, mixer, a shard or its shards in order), like gdalinfo."""
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
@click.argument("src", type=click.Path(exists=True))
@click.argument("dst", type=click.Path(), required=False)
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@_with_open_options
def vrt_command(src: str, dst: str | None, overwrite: bool, options: dict[str, Any]) -> None:
    """Write a GDAL VRT for an export (PREFIX.vrt beside it by default).

    GDAL, rasterio and QGIS then read the export through tfrecord_io's pixel function, with the
    configuration that `tfrecord-io doctor` prints.
    """
    with _reported():
        if dst is not None and os.path.exists(dst) and not overwrite:
            raise click.ClickException(f"'{dst}' exists: pass --overwrite to replace it")
        path = vrt.build_vrt(src, dst, **options)
    click.echo(path)


@main.command("doctor")
def doctor_command() -> None:
    """Check that GDAL can run tfrecord_io's pixel function here; say how to fix what cannot."""
    from tfrecord_io.gdal import doctor

    checks = doctor.run_checks()
    for check in checks:
        click.echo(f"[{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
        if check.fix:
            click.echo("    fix: " + check.fix.replace("\n", "\n         "))
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@main.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_with_open_options
def validate_command(paths: tuple[str, ...], as_json: bool, options: dict[str, Any]) -> None:
    """Check every record of an export; exit status 1 when there is any problem."""
    with _reported() as stderr:
        report = tools.ValidationReport.from_path(_export_arg(paths), **options)
        # GDAL's own lines about a problem (an unknown CRS) are in the report already.
        stderr.discarded = not report.valid
    click.echo(report.to_json() if as_json else report.to_text())
    if not report.valid:
        raise SystemExit(1)
