"""What the ``tfrecord-io`` commands share: their options, and errors and progress reported.

:func:`reported` turns the library's errors into click's one-line error (GDAL's own message
folded in) and :func:`progress_bar` shows a bar on a terminal; the option decorators give the
commands the same flags (--kernel-size, --mixer, --allow-missing, --storage-option, ...).
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
from tfrecord_io.gdal.cpl import gdal_errors
from tfrecord_io.image.options import parse_kernel_size

__all__ = [
    "PATH_OR_URL",
    "PathOrURL",
    "Stderr",
    "export_arg",
    "kernel_option",
    "missing_option",
    "mixer_option",
    "open_options",
    "overwrite_option",
    "parse_creation_options",
    "progress_bar",
    "quiet_option",
    "reported",
    "storage_option",
    "storage_options",
    "with_open_options",
]


class Stderr:
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
def reported() -> Iterator[Stderr]:
    """Turn errors into click's one-line error and exit status 1, GDAL's message folded in."""
    stderr = Stderr()
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
def progress_bar(
    quiet: bool, label: str, stderr: Stderr
) -> Iterator[Callable[[float], None] | None]:
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


kernel_option = click.option(
    "--kernel-size",
    "kernel_size",
    default=None,
    help="The export's kernelSize as K or X,Y (inferred from the records when not given).",
)


storage_option = click.option(
    "--storage-option",
    "storage_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="fsspec storage option for a gs://, s3:// or https:// URL (repeatable); VALUE is "
    "JSON when it parses as JSON (true, 3, {...}), text otherwise. E.g. --storage-option "
    "token=anon, --storage-option anon=true.",
)


class PathOrURL(click.ParamType):
    """A local path that must exist, or a URL (checked when it is opened)."""

    name = "path_or_url"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        """Return ``value`` as text; fail when it is neither a URL nor an existing path."""
        text = str(value)
        if not storage.is_url(text) and not os.path.exists(text):
            self.fail(f"'{text}' does not exist.", param, ctx)
        return text


PATH_OR_URL = PathOrURL()


def storage_options(items: tuple[str, ...]) -> dict[str, Any]:
    """Parse --storage-option NAME=VALUE items: VALUE as JSON when it parses, else text."""
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


mixer_option = click.option(
    "--mixer",
    "mixer",
    type=PATH_OR_URL,
    default=None,
    help="The mixer JSON, when the export's files are renamed or it has none.",
)
missing_option = click.option(
    "--allow-missing",
    "allow_missing",
    is_flag=True,
    help="Read a partial export: patches of missing shards are nodata.",
)


def open_options(
    kernel_size: str | None,
    mixer: str | None = None,
    allow_missing: bool = False,
    storage_items: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Return the open keywords of the options given (--kernel-size parsed, others as given)."""
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
        options["storage_options"] = storage_options(storage_items)
    return options


def with_open_options(command: Callable[..., None]) -> Callable[..., None]:
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
        options = open_options(kernel_size, mixer, allow_missing, storage_items)
        command(*args, options=options, **kwargs)

    return kernel_option(mixer_option(missing_option(storage_option(wrapper))))


def export_arg(paths: tuple[str, ...]) -> str | list[str]:
    """One path as given, several as a list of shards in export order."""
    return paths[0] if len(paths) == 1 else list(paths)


def parse_creation_options(items: tuple[str, ...]) -> dict[str, str]:
    """Parse -co NAME=VALUE items into a dictionary of text values."""
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, not {item!r}", param_hint="-co")
        options[name] = value
    return options


overwrite_option = click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
