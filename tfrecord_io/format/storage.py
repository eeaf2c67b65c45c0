"""Where files live: local paths through the OS, URLs through fsspec.

URLs are ``gs://``, ``s3://``, ``https://`` (reading), ``memory://`` and whatever fsspec knows.
Every read of an export's files that may be remote goes through these functions, so one place
knows about object stores (code that only ever sees local files, such as the index builders
that need a real file for rapidgzip, uses the OS directly). Local paths never touch fsspec
(QGIS's Python has none); a URL imports it lazily and names the ``tfrecord_io[cloud]`` extra
when it is missing.

A :class:`Store` is the storage of one opened export: the ``storage_options`` handed to fsspec,
and the identity (size and generation, etag or modification time) each remote file had when it
was first opened. A file opened again with another identity, or found changed after a read went
wrong, raises :class:`~tfrecord_io.errors.ShardChangedError`, since offsets learnt from it no
longer hold. Remote errors become :class:`~tfrecord_io.errors.TFRecordIOError` subclasses naming
the URL: :class:`~tfrecord_io.errors.MissingShardError` (not found) and
:class:`~tfrecord_io.errors.StorageAccessError` (access denied).
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, TypeAlias

from tfrecord_io.errors import (
    MissingShardError,
    OptionError,
    ShardChangedError,
    StorageAccessError,
    TFRecordIOError,
)
from tfrecord_io.format.localfile import file_kind, open_file

__all__ = [
    "BLOCK_SIZE",
    "Stat",
    "StorageOptions",
    "Store",
    "abspath",
    "as_store",
    "basename",
    "exists",
    "file_kind",
    "is_url",
    "isdir",
    "join",
    "list_export",
    "listdir",
    "open_file",
    "open_input",
    "read_bytes",
    "read_text",
    "split",
    "stat",
    "upload",
]

BLOCK_SIZE = 1 << 20  # bytes fetched per ranged request of a remote file
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Keys of fsspec's info() that change when an object is replaced, best first.
_IDENTITY_KEYS = (
    "generation",
    "ETag",
    "etag",
    "VersionId",
    "mtime",
    "LastModified",
    "updated",
    "created",
)
_DENIED = re.compile(r"Forbidden|AccessDenied|Access Denied|\b403\b|\b401\b", re.IGNORECASE)


def is_url(path: object) -> bool:
    """Return True if ``path`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


@dataclass(frozen=True)
class Stat:
    """A file's size in bytes and what identifies its content (changes when it is replaced).

    ``fields`` holds the same as a small JSON-able dict (``size`` and ``mtime_ns`` locally;
    ``size`` and ``generation``, ``ETag``... remotely), for sidecars that record it.
    """

    size: int
    identity: str
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False)


class Store:
    """The storage options of one opened export, and the identity of each remote file read.

    Parameters
    ----------
    options : mapping, optional
        Keyword arguments for the fsspec filesystem (``token``, ``anon``, ``endpoint_url``, ...).
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._identities: dict[str, str] = {}
        self._lock = threading.Lock()

    def filesystem(self, url: str) -> tuple[Any, str]:
        """Return the fsspec filesystem of ``url`` and the path within it."""
        try:
            import fsspec.core
        except ImportError:
            raise OptionError(
                f"'{url}' is a URL and reading URLs needs fsspec: pip install 'tfrecord_io[cloud]'"
            ) from None
        try:
            return fsspec.core.url_to_fs(url, **self.options)
        except ImportError as exc:
            raise OptionError(
                f"'{url}': {exc}. Install the cloud extra: pip install 'tfrecord_io[cloud]'"
            ) from None

    def remember(self, url: str, identity: str) -> None:
        """Record ``url``'s identity, or raise if it differs from the one first seen."""
        with self._lock:
            first = self._identities.setdefault(url, identity)
        if first != identity:
            raise ShardChangedError(
                f"'{url}' changed while it was being read (it was {first}, it is now "
                f"{identity}). Another process replaced it: open the export again.",
                path=url,
            )

    def check_unchanged(self, url: str) -> None:
        """Stat ``url`` afresh and raise :class:`ShardChangedError` if it was replaced."""
        with self._lock:
            first = self._identities.get(url)
        if first is None:
            return
        fs, path = self.filesystem(url)
        fs.invalidate_cache(path)
        with translate_errors(url):
            now = _identity(fs.info(path))
        self.remember(url, now)

    def open_input(self, path: str, cache: Literal["readahead", "blockcache", "none"]) -> BinaryIO:
        """Open ``path`` for binary reading (see :func:`open_input`)."""
        if not is_url(path):
            return open_file(path, "file")
        fs, inner = self.filesystem(path)
        with translate_errors(path):
            try:
                f = fs.open(inner, "rb", block_size=BLOCK_SIZE, cache_type=cache)
            except ValueError as exc:
                if "range" not in str(exc):
                    raise
                raise OptionError(
                    f"'{path}': the server does not answer range requests, so a shard cannot "
                    "be read in pieces. Download the export, or serve it from a store that "
                    "does (Cloud Storage, S3, most web servers and CDNs)."
                ) from None
        try:
            with translate_errors(path):
                details = getattr(f, "details", None) or fs.info(inner)
            self.remember(path, _identity(details))
        except BaseException:
            f.close()
            raise
        return _RemoteInput(f, path, self)  # type: ignore[return-value]


StorageOptions: TypeAlias = Mapping[str, Any] | Store | None


def as_store(storage_options: StorageOptions) -> Store:
    """Return ``storage_options`` as a :class:`Store` (a Store is returned as it is)."""
    return storage_options if isinstance(storage_options, Store) else Store(storage_options)


def _identity(info: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in _identity_fields(info).items())


def _identity_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    for key in _IDENTITY_KEYS:
        value = info.get(key)
        if value is not None and value != "":
            return {"size": info.get("size"), key: value if isinstance(value, int) else str(value)}
    return {"size": info.get("size")}


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn fsspec's errors for ``url`` into TFRecordIOError subclasses naming it."""
    try:
        yield
    except TFRecordIOError:
        raise
    except FileNotFoundError as exc:
        raise MissingShardError(
            f"'{url}' does not exist (or its bucket does not). Check the URL, and that the "
            "export finished."
        ) from exc
    except PermissionError as exc:
        raise _denied(url, exc) from exc
    except OSError as exc:
        if _DENIED.search(str(exc)):
            raise _denied(url, exc) from exc
        raise
    except Exception as exc:  # gcsfs's HttpError for 401 and similar, whatever their class
        if getattr(exc, "code", None) in (401, 403) or _DENIED.search(str(exc)):
            raise _denied(url, exc) from exc
        raise


def _denied(url: str, exc: BaseException) -> StorageAccessError:
    return StorageAccessError(
        f"'{url}': access denied ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})."
        " Check the credentials given in storage_options (token, key/secret, profile) and that "
        "they may read (or write) this bucket."
    )


class _RemoteInput(io.RawIOBase):
    """A remote file opened for reading: fsspec's file, with errors naming the URL."""

    def __init__(self, f: Any, url: str, store: Store) -> None:
        self._f = f
        self.name = url
        self._store = store

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._errors():
            return bytes(self._f.read(size))

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._f.seek(offset, whence))

    def tell(self) -> int:
        return int(self._f.tell())

    def close(self) -> None:
        self._f.close()
        super().close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            with translate_errors(self.name):
                yield
        except MissingShardError:
            self._store.check_unchanged(self.name)  # gone mid-read: replaced or removed
            raise


def open_input(
    path: str | os.PathLike[str],
    storage_options: StorageOptions = None,
    *,
    cache: Literal["readahead", "blockcache", "none"] = "readahead",
) -> BinaryIO:
    """Open a file for binary reading; seekable, local or remote.

    Parameters
    ----------
    path : path-like or str
        A local path or a URL.
    storage_options : dict or Store, optional
        fsspec options for a URL (ignored for local paths).
    cache : {"readahead", "blockcache", "none"}
        fsspec cache of a remote file: read ahead (a block beyond each read) for small
        sequential reads, an LRU of blocks for small random reads, none for a peek at a few
        bytes or for a caller that reads large pieces itself.

    Raises
    ------
    MissingShardError
        The file does not exist.
    StorageAccessError
        The credentials may not read it.
    ShardChangedError
        It was replaced since this store first opened it.
    """
    return as_store(storage_options).open_input(os.fspath(path), cache)


def stat(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> Stat:
    """Return a file's size and identity (local: mtime_ns; remote: generation or etag)."""
    path = os.fspath(path)
    if not is_url(path):
        st = os.stat(path)
        fields = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return Stat(st.st_size, f"size {st.st_size}, mtime_ns {st.st_mtime_ns}", fields)
    fs, inner = as_store(storage_options).filesystem(path)
    with translate_errors(path):
        info = fs.info(inner)  # from the listing when one was just made: no request
    return Stat(int(info.get("size") or 0), _identity(info), _identity_fields(info))


def upload(local: str | os.PathLike[str], url: str, storage_options: StorageOptions = None) -> None:
    """Put the local file ``local`` at ``url`` in one upload (an object appears whole or not).

    Raises
    ------
    StorageAccessError
        The credentials may not write there.
    MissingShardError
        The bucket does not exist.
    """
    fs, inner = as_store(storage_options).filesystem(url)
    with translate_errors(url):
        fs.put_file(os.fspath(local), inner)
        fs.invalidate_cache(inner)


def exists(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> bool:
    """Return True if a file or folder (prefix) exists."""
    path = os.fspath(path)
    if not is_url(path):
        return os.path.exists(path)
    fs, inner = as_store(storage_options).filesystem(path)
    with translate_errors(path):
        return bool(fs.exists(inner))


def isdir(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> bool:
    """Return True if ``path`` is a folder (for a URL: ends in ``/`` or is a prefix)."""
    path = os.fspath(path)
    if not is_url(path):
        return os.path.isdir(path)
    if path.endswith("/"):
        return True
    fs, inner = as_store(storage_options).filesystem(path)
    with translate_errors(path):
        return bool(fs.isdir(inner))


def listdir(folder: str | os.PathLike[str], storage_options: StorageOptions = None) -> list[str]:
    """Return the names (not paths) of the files in a folder or under a prefix."""
    folder = os.fspath(folder)
    if not is_url(folder):
        return os.listdir(folder)
    fs, inner = as_store(storage_options).filesystem(folder)
    with translate_errors(folder):
        entries = fs.ls(inner, detail=False, refresh=True)
    return [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]


def list_export(
    folder: str, prefix: str | None, storage_options: StorageOptions = None
) -> list[str]:
    """Return the names in ``folder``, probing for those of ``prefix`` over HTTP(S).

    Web servers (``https://storage.googleapis.com/...`` among them) list no folders, so for an
    HTTP(S) URL whose prefix is known (a shard or mixer URL) the export's names are asked for
    one by one: the mixer, then shards ``00000``, ``00001``... until one is missing.
    """
    if prefix is None or not folder.startswith(("http://", "https://")):
        return listdir(folder, storage_options)
    names = (
        [f"{prefix}-mixer.json"]
        if exists(join(folder, f"{prefix}-mixer.json"), storage_options)
        else []
    )
    number = 0
    while True:
        found = [
            name
            for name in (f"{prefix}-{number:05d}.tfrecord.gz", f"{prefix}-{number:05d}.tfrecord")
            if exists(join(folder, name), storage_options)
        ]
        if not found:
            return names
        names.append(found[0])
        number += 1


def abspath(path: str | os.PathLike[str]) -> str:
    """Return an absolute local path, or a URL without its trailing ``/``."""
    path = os.fspath(path)
    if is_url(path):
        return path.rstrip("/") if not path.endswith("://") else path
    return os.path.abspath(path)


def join(folder: str, name: str) -> str:
    """Join a folder (path or URL) and a file name."""
    if is_url(folder):
        return f"{folder.rstrip('/')}/{name}"
    return os.path.join(folder, name)


def split(path: str) -> tuple[str, str]:
    """Split a path or URL into its folder and its last name."""
    if is_url(path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail
    return os.path.split(path)


def basename(path: str) -> str:
    """Return the last name of a path or URL."""
    return split(path)[1]


def read_text(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> str:
    """Read a small UTF-8 text file (a mixer) from a path or URL."""
    return _read_all(path, storage_options).decode("utf-8")


def _read_all(path: str | os.PathLike[str], storage_options: StorageOptions) -> bytes:
    with open_input(path, storage_options, cache="none") as f:
        return f.read()


def read_bytes(
    path: str | os.PathLike[str], storage_options: StorageOptions = None, missing_ok: bool = False
) -> bytes | None:
    """Read a small file whole from a path or URL: a mixer, or a sidecar such as a record index.

    This is the hook for sidecars that may be absent (a persisted index beside the shards):
    ``read_bytes(url, store, missing_ok=True)`` returns None when there is none, in one request.

    Raises
    ------
    MissingShardError
        The file does not exist and ``missing_ok`` is False.
    StorageAccessError
        The credentials may not read it.
    """
    try:
        return _read_all(path, storage_options)
    except FileNotFoundError:  # MissingShardError, or the OS's own for a local path
        if missing_ok:
            return None
        raise
