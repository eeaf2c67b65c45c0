"""Writes to object stores: an export made locally, then uploaded shards first and mixer last.

:class:`RemoteDestination` has :class:`~tfrecord_io.format.shards.Destination`'s interface, for a
URL (``gs://bucket/predictions/``, ``s3://...``, ``memory://...``). Shards are written into a
local temporary folder as for a local write; :meth:`RemoteDestination.commit` uploads them in
order and the mixer last, so a reader listing the prefix never finds a mixer whose shards are not
all there. If an upload fails, every file this write uploaded is removed again and the error
names the URL. An existing export with the same prefix is never replaced unless ``overwrite``
is given; when it is, the old mixer is removed first (so no reader pairs it with new shards),
then the new shards are uploaded, the old shards the new export does not reuse are removed, and
the new mixer comes last.

:func:`open_destination` picks the local or the remote kind from the path;
:func:`atomic_output` does the same for one file (a table).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tfrecord_io.errors import ExportExistsError, OptionError
from tfrecord_io.format import storage
from tfrecord_io.format.atomic import atomic_file
from tfrecord_io.format.destination import refuse_existing
from tfrecord_io.format.shards import Destination, export_file_names
from tfrecord_io.format.sidecar import SIDECAR_SUFFIX
from tfrecord_io.format.storage import StorageOptions, translate_errors

__all__ = ["AnyDestination", "RemoteDestination", "atomic_output", "open_destination"]


def open_destination(
    path: str | os.PathLike[str],
    prefix: str,
    overwrite: bool = False,
    storage_options: StorageOptions = None,
) -> AnyDestination:
    """Return where a write goes: a :class:`Destination` for a path, a remote one for a URL.

    Raises
    ------
    ExportExistsError
        The destination already holds an export with this prefix and ``overwrite`` is False.
    OptionError
        The prefix is not a plain name, or a local destination's parent does not exist.
    """
    if storage.is_url(os.fspath(path)):
        return RemoteDestination(os.fspath(path), prefix, overwrite, storage_options)
    return Destination(path, prefix, overwrite)


class RemoteDestination:
    """An export folder at a URL, written through a local temporary folder and uploaded.

    Parameters
    ----------
    url : str
        The export folder (prefix), for example ``gs://bucket/predictions``.
    prefix : str
        ``fileNamePrefix`` of the export's files.
    overwrite : bool
        Replace an export with the same prefix already there.
    storage_options : dict or Store, optional
        fsspec options (credentials, endpoint).

    Raises
    ------
    ExportExistsError
        The folder already holds an export with this prefix and ``overwrite`` is False.
    StorageAccessError
        The credentials may not list the folder.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        overwrite: bool = False,
        storage_options: StorageOptions = None,
    ) -> None:
        if not prefix or "/" in prefix or os.sep in prefix:
            raise OptionError(f"file_name_prefix must be a plain file name prefix, not {prefix!r}")
        self.path = storage.abspath(url)
        self.prefix = prefix
        self.overwrite = overwrite
        self.store = storage.as_store(storage_options)
        self._fs, self._root = self.store.filesystem(self.path)
        self._check_existing()
        self.temp = tempfile.mkdtemp(prefix=f".{prefix}.upload-")
        self.committed = False

    def _existing(self) -> list[str]:
        with translate_errors(self.path):
            if not self._fs.exists(self._root):
                return []
            entries = self._fs.ls(self._root, detail=False, refresh=True)
        names = [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return export_file_names(names, self.prefix)

    def _check_existing(self) -> None:
        if self.overwrite:
            return
        refuse_existing(self.path, self.prefix, self._existing())

    def temp_path(self, name: str) -> str:
        """Return the local path of ``name`` in the temporary folder."""
        return os.path.join(self.temp, name)

    def url(self, name: str) -> str:
        """Return the URL of the file ``name`` of this export."""
        return storage.join(self.path, name)

    def _remote(self, name: str) -> str:
        return f"{self._root.rstrip('/')}/{name}"

    def commit(self, names: list[str], mixer_text: str | None) -> list[str]:
        """Upload the shards ``names`` in order, then the mixer; undo the uploads on failure.

        Returns
        -------
        list of str
            The URLs written: shards in order, then the mixer.
        """
        mixer_name = f"{self.prefix}-mixer.json"
        uploaded: list[str] = []
        try:
            self._check_existing()
            old = self._existing() if self.overwrite else []
            # The mixer goes first, so no reader pairs it with new shards; the old sidecar
            # with it (it would only be found stale).
            first = [n for n in (mixer_name, self.prefix + SIDECAR_SUFFIX) if n in old]
            self._remove(first)
            for name in names:
                self._put(self.temp_path(name), name)
                uploaded.append(name)
            # Old shards the new export does not reuse go before the new mixer appears, so a
            # listing with the new mixer holds exactly its shards.
            self._remove([n for n in old if n not in names and n not in first])
            if mixer_text is not None:
                with open(self.temp_path(mixer_name), "w", encoding="utf-8") as f:
                    f.write(mixer_text)
                self._put(self.temp_path(mixer_name), mixer_name)
                names = [*names, mixer_name]
        except BaseException:
            self._remove(uploaded, quiet=True)
            raise
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)
        self.committed = True
        self._fs.invalidate_cache(self._root)
        return [self.url(name) for name in names]

    def _put(self, local: str, name: str) -> None:
        with translate_errors(self.url(name)):
            self._fs.put_file(local, self._remote(name))

    def _remove(self, names: list[str], quiet: bool = False) -> None:
        for name in names:
            try:
                with translate_errors(self.url(name)):
                    self._fs.rm_file(self._remote(name))
            except Exception:
                if not quiet:
                    raise
        if names:
            self._fs.invalidate_cache(self._root)

    def abort(self) -> None:
        """Remove the local temporary folder; nothing was uploaded unless committed."""
        if not self.committed:
            shutil.rmtree(self.temp, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RemoteDestination({self.path!r}, {self.prefix!r})"


#: Where a write goes: a local folder or a URL (see :func:`open_destination`).
AnyDestination = Destination | RemoteDestination


@contextmanager
def atomic_output(
    path: str | os.PathLike[str], overwrite: bool = False, storage_options: StorageOptions = None
) -> Iterator[str]:
    """Yield a local temporary path for one file; put it at ``path`` when the block succeeds.

    A local ``path`` is renamed into place (:func:`~tfrecord_io.format.atomic.atomic_file`);
    a URL is uploaded as one object put, so a reader sees the whole file or none. An existing
    file is never replaced unless ``overwrite``: it is checked before the block and again just
    before the upload (not atomically: two writers racing to one URL are not excluded).

    Raises
    ------
    ExportExistsError
        The file exists and ``overwrite`` is False.
    """
    url = os.fspath(path)
    if not storage.is_url(url):
        with atomic_file(url, overwrite) as temp:
            yield temp
        return

    def check() -> None:
        if not overwrite and storage.exists(url, storage_options):
            raise ExportExistsError(
                f"'{url}' exists: pass overwrite=True (--overwrite) to replace it"
            )

    check()
    name = storage.basename(url)
    folder = tempfile.mkdtemp(prefix=".upload-")
    try:
        temp = os.path.join(folder, name)  # keeps the suffix (writers choose gzip by it)
        yield temp
        if not os.path.exists(temp):
            raise OptionError(f"nothing was written to '{url}'")
        check()
        storage.upload(temp, url, storage_options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
