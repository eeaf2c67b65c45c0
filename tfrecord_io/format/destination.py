"""Where a write goes: a temporary folder committed by renames, recoverable after a crash.

A write puts its shards and mixer in a temporary folder and moves them into place at the end
(:meth:`Destination.commit`). The temporary folder is ``.NAME.tmp-XXXXXXXX`` beside a new export
folder ``NAME``, or ``.PREFIX.tmp-XXXXXXXX`` inside an existing folder. Beside it lies its
*marker*, the same name with ``.json``, saying who owns it (process id, its start time, host)
and which step the commit reached; it is always replaced atomically.

The guarantee, for a crash (a kill, a power cut) at any moment:

- **New folder.** The export appears by one ``rename`` of the finished temporary folder: there
  is either no folder or the complete new export.
- **Existing folder** (another export beside it, or ``overwrite=True``). Until every new file is
  complete and fsynced and the marker says ``committing``, the folder is untouched (the complete
  old export, if any). From then on the commit only moves files: the old export's files go into
  ``TEMP/.old`` (mixer first), then the new files come in (mixer last), the marker says ``done``
  and the temporary folder is removed. A crash in between can leave the folder with the old
  export partly moved out or the new one partly moved in, and nothing is deleted until the new
  export is complete in place. :func:`recover_writes` (run by every later write to the same
  destination, and by ``tfrecord-io doctor FOLDER``) finishes such a commit: afterwards the
  folder holds the complete new export. A crash before ``committing`` is undone: the temporary
  folder is removed and the folder holds the complete old export.

A temporary folder is recovered only when its marker names this host and a process that is no
longer running (a process id that was reused by another process is told apart by its start
time where ``/proc`` gives it); one without a marker is not ours and is left alone. On Windows,
where a process cannot be probed safely, nothing is recovered automatically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
from typing import Any

from tfrecord_io.errors import ExportExistsError, OptionError

__all__ = ["Destination", "export_file_names", "recover_writes", "refuse_existing"]

_BACKUP = ".old"
_TEMP = re.compile(r"^\.(?P<owner>.+)\.tmp-[0-9a-f]{16}$")


def _export_files(folder: str, prefix: str) -> list[str]:
    """Names in ``folder`` that belong to the export ``prefix``: shards and mixer."""
    return export_file_names(os.listdir(folder), prefix)


def export_file_names(names: list[str], prefix: str) -> list[str]:
    """Return the ``names`` that belong to the export ``prefix``, sorted.

    Its shards, its mixer and its persisted index (``PREFIX-index.tfrindex``): an overwrite
    replaces them all, so no sidecar of the old export is left to be found stale.
    """
    pattern = re.compile(
        re.escape(prefix) + r"-(\d{5}\.tfrecord(\.gz)?|mixer\.json|index\.tfrindex)$"
    )
    return sorted(name for name in names if pattern.match(name))


def refuse_existing(path: str, prefix: str, existing: list[str]) -> None:
    """Refuse to write the export ``prefix`` into ``path`` over its ``existing`` files.

    Parameters
    ----------
    path : str
        The destination folder or URL.
    prefix : str
        The export's file name prefix.
    existing : list of str
        The names of the export's files already there (none: nothing is refused).

    Raises
    ------
    ExportExistsError
        ``existing`` is not empty.
    """
    if existing:
        raise ExportExistsError(
            f"'{path}' already holds the export '{prefix}' ({existing[0]}"
            f"{' and more' if len(existing) > 1 else ''}). Pass overwrite=True to replace "
            "it, or choose another folder or file_name_prefix."
        )


def _mixer_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: not n.endswith("mixer.json"))


def _mixer_last(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: n.endswith("mixer.json"))


def _start_time(pid: int) -> str | None:
    """Return a process's start time from /proc (tells a reused process id), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_marker(marker: str, state: dict[str, Any], scratch: str) -> None:
    """Replace the marker atomically, writing it first as ``scratch`` (a path in its folder)."""
    try:
        with open(scratch, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(scratch, marker)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(scratch)
        raise
    _fsync_path(os.path.dirname(marker))


def _read_marker(marker: str) -> dict[str, Any] | None:
    try:
        with open(marker, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("writer") == "tfrecord_io" else None


def _is_stale(state: dict[str, Any]) -> bool:
    """Tell whether the marker's writer ran on this host and is no longer running."""
    if state.get("host") != socket.gethostname():
        return False
    pid = state.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or os.name == "nt":
        return False  # on Windows os.kill(pid, 0) would end the process: never guess there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, under another user
    started = state.get("started")
    return started is not None and _start_time(pid) not in (None, started)


def _roll_forward(temp: str, state: dict[str, Any], marker: str) -> None:
    """Finish a commit whose new files are all complete in ``temp``; idempotent."""
    folder = state["folder"]
    if state.get("fresh") and os.path.isdir(temp) and not os.path.exists(folder):
        os.rename(temp, folder)
    elif os.path.isdir(temp) and state["state"] == "committing":
        # After "done" every move is made and the backup may be half removed: moving again
        # would take new files for old ones.
        backup = os.path.join(temp, _BACKUP)
        os.makedirs(backup, exist_ok=True)
        for name in _mixer_first(state["old"]):
            # Every old file is moved out before any new one comes in, so a file of this name
            # in the folder is the old one exactly when the backup holds none yet.
            if not os.path.lexists(os.path.join(backup, name)) and os.path.lexists(
                os.path.join(folder, name)
            ):
                os.replace(os.path.join(folder, name), os.path.join(backup, name))
        for name in _mixer_last(state["new"]):
            if os.path.lexists(os.path.join(temp, name)):
                os.replace(os.path.join(temp, name), os.path.join(folder, name))
        _fsync_path(folder)
        _write_marker(marker, {**state, "state": "done"}, os.path.join(temp, ".marker"))
    shutil.rmtree(temp, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(marker)


def _recover(temp: str, state: dict[str, Any], marker: str) -> str:
    """Finish or undo the write of one temporary folder; say what was done."""
    if state.get("state") in ("committing", "done"):
        _roll_forward(temp, state, marker)
        return f"finished the interrupted write of '{state['folder']}' ({temp})"
    shutil.rmtree(temp, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(marker)
    return f"removed the temporary folder of an interrupted write ({temp})"


def recover_writes(folder: str | os.PathLike[str], owner: str | None = None) -> list[str]:
    """Finish or undo the writes in ``folder`` whose writer died, and remove their temporary files.

    Parameters
    ----------
    folder : path-like
        A folder that holds exports, or the parent of an export folder.
    owner : str, optional
        Only the temporary folders of this prefix (or export folder name).

    Returns
    -------
    list of str
        What was done, one line per temporary folder.
    """
    folder = os.path.abspath(os.fspath(folder))
    try:
        entries = os.listdir(folder)
    except OSError:
        return []
    done = []
    for entry in sorted(entries):
        if entry.endswith(".json.part"):  # a first marker cut short: no folder was made yet
            state = _read_marker(os.path.join(folder, entry))
            if state is not None and _is_stale(state):
                os.remove(os.path.join(folder, entry))
            continue
        if not entry.endswith(".json"):
            continue
        match = _TEMP.match(entry[: -len(".json")])
        if match is None or (owner is not None and match["owner"] != owner):
            continue
        marker = os.path.join(folder, entry)
        state = _read_marker(marker)
        if state is not None and _is_stale(state):
            done.append(_recover(marker[: -len(".json")], state, marker))
    return done


class Destination:
    """A folder to write an export into, through a temporary folder renamed at the end.

    Stale temporary folders of earlier writes to the same destination are recovered first
    (:func:`recover_writes`).

    Parameters
    ----------
    path : path-like
        The export folder. It may exist (holding other exports); its parent must exist.
    prefix : str
        ``fileNamePrefix`` of the export's files.
    overwrite : bool
        Replace an export with the same prefix already in the folder.

    Raises
    ------
    ExportExistsError
        The folder already holds an export with this prefix and ``overwrite`` is False.
    OptionError
        The path is a file, or its parent folder does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], prefix: str, overwrite: bool = False) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.prefix = prefix
        self.overwrite = overwrite
        if not prefix or "/" in prefix or os.sep in prefix:
            raise OptionError(f"file_name_prefix must be a plain file name prefix, not {prefix!r}")
        parent = os.path.dirname(self.path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OptionError(f"'{self.path}' is a file; an export is written into a folder")
        if not os.path.isdir(parent):
            raise OptionError(f"the folder '{parent}' does not exist: create it first")
        recover_writes(parent, os.path.basename(self.path))
        recover_writes(self.path, prefix)
        self._check_existing()
        fresh = not os.path.isdir(self.path)
        where, owner = (parent, os.path.basename(self.path)) if fresh else (self.path, prefix)
        self.temp = os.path.join(where, f".{owner}.tmp-{secrets.token_hex(8)}")
        self._marker = self.temp + ".json"
        pid = os.getpid()
        self._state: dict[str, Any] = {
            "writer": "tfrecord_io",
            "state": "writing",
            "pid": pid,
            "started": _start_time(pid),
            "host": socket.gethostname(),
            "folder": self.path,
            "prefix": prefix,
            "fresh": fresh,
            "new": [],
            "old": [],
        }
        # The marker comes first, so no temporary folder of ours ever lacks one.
        _write_marker(self._marker, self._state, self._marker + ".part")
        try:
            os.mkdir(self.temp, 0o700)
        except BaseException:
            os.remove(self._marker)
            raise
        self.committed = False

    def _check_existing(self) -> None:
        if not os.path.isdir(self.path) or self.overwrite:
            return
        refuse_existing(self.path, self.prefix, _export_files(self.path, self.prefix))

    def temp_path(self, name: str) -> str:
        """Return the path of ``name`` in the temporary folder."""
        return os.path.join(self.temp, name)

    def commit(self, names: list[str], mixer_text: str | None) -> list[str]:
        """Move the shards ``names`` (and the mixer, written last) into the destination.

        Parameters
        ----------
        names : list of str
            Shard file names in the temporary folder, in order.
        mixer_text : str, optional
            The mixer's JSON; None writes no mixer.

        Returns
        -------
        list of str
            The final paths: shards in order, then the mixer.
        """
        mixer_name = f"{self.prefix}-mixer.json"
        if mixer_text is not None:
            with open(self.temp_path(mixer_name), "w", encoding="utf-8") as f:
                f.write(mixer_text)
            names = [*names, mixer_name]
        for entry in os.listdir(self.temp):  # the spill and anything else not part of the export
            if entry not in names:
                path = self.temp_path(entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for name in names:  # every new file on disk before anything of the old export moves
            _fsync_path(self.temp_path(name))
        _fsync_path(self.temp)
        fresh = not os.path.exists(self.path)
        if not fresh:
            self._check_existing()
        old = [] if fresh else _export_files(self.path, self.prefix)
        self._state.update(state="committing", fresh=fresh, new=names, old=old)
        _write_marker(self._marker, self._state, self.temp_path(".marker"))
        _roll_forward(self.temp, self._state, self._marker)
        self.committed = True
        return [os.path.join(self.path, name) for name in names]

    def abort(self) -> None:
        """Undo the write: remove the temporary folder, unless the commit must be finished.

        Once the commit has started moving files (the marker says ``committing``), an error
        finishes it instead, so the destination holds the complete new export.
        """
        if self.committed:
            return
        if self._state["state"] == "committing":
            _roll_forward(self.temp, self._state, self._marker)
            self.committed = True
            return
        shutil.rmtree(self.temp, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._marker)
