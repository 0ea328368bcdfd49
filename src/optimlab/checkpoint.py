"""Checkpoint files: NumPy arrays plus JSON metadata, pickle-free, verified, written atomically.

This module is the file layer only: :func:`save_arrays` and :func:`load_arrays`. What the arrays
and the metadata mean (an optimizer's slots, its step counter, its hyperparameters) is decided by
the caller.

The format (version 1)
----------------------
An uncompressed zip archive in the layout of :func:`numpy.savez`, so that ``numpy.load`` reads
it (``allow_pickle=False`` suffices):

* one member ``<key>.npy`` per array, in the ``.npy`` format, C order; only boolean and numeric
  dtypes (bool, signed/unsigned integers, floats, complex);
* one member ``__optimlab__.npy``: a 1-D ``uint8`` array holding UTF-8 JSON (an array rather
  than a raw zip member, so that every member is a ``.npy`` file and ``numpy.savez`` can write
  the whole file)::

      {"format": "optimlab-checkpoint", "version": 1, "metadata": {...}, "sha256": "<hex>"}

``sha256`` is the digest of a canonical serialization of the content, independent of the zip
layout: the bytes ``optimlab-checkpoint/1\\n``; then, for every array in order of its key
(Python string order), the line ``["<key>","<dtype.str>",[<shape>],<nbytes>]\\n`` (compact
JSON, UTF-8) followed by the array's C-order bytes; then the line ``metadata\\n`` followed by
the canonical JSON of the metadata (``sort_keys=True``, separators ``,`` and ``:``, UTF-8,
no NaN/Inf). The zip CRCs catch accidental corruption of the stored bytes; the digest also
catches a file that was rewritten with consistent CRCs (an array changed, a member dropped or
added, the metadata edited) and bugs of a foreign writer.

Why no pickle: unpickling runs arbitrary code named in the file, so loading a checkpoint from
anywhere else would mean trusting it completely. ``.npy`` members with plain dtypes and a JSON
document are data only; ``numpy.load(..., allow_pickle=False)`` refuses object arrays.

Atomicity: :func:`save_arrays` writes a temporary file in the target's directory, flushes and
fsyncs it, renames it onto the target with :func:`os.replace` (atomic on POSIX and Windows) and
fsyncs the directory. A crash or an error leaves either the old file or the new one, never a
mixture; on an error the temporary file is removed.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["CheckpointError", "save_arrays", "load_arrays", "save", "load", "restore"]

FORMAT = "optimlab-checkpoint"
VERSION = 1
_META_KEY = "__optimlab__"
_ALLOWED_KINDS = "biufc"  # bool, int, unsigned, float, complex
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive


class CheckpointError(ValueError):
    """A file that is not a valid optimlab checkpoint: truncated, corrupt, modified, foreign."""


# --------------------------------------------------------------------------------------------
# canonical content
# --------------------------------------------------------------------------------------------


def _canonical_json(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _digest(arrays: Mapping[str, np.ndarray], canonical_metadata: str) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT}/{VERSION}\n".encode())
    for key in sorted(arrays):
        a = arrays[key]
        header = json.dumps(
            [key, a.dtype.str, list(a.shape), a.nbytes], separators=(",", ":"), ensure_ascii=False
        )
        h.update(header.encode("utf-8") + b"\n")
        flat = a.reshape(-1) if a.flags.c_contiguous else a.copy(order="C").reshape(-1)
        h.update(flat.view(np.uint8))
    h.update(b"metadata\n")
    h.update(canonical_metadata.encode("utf-8"))
    return h.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()  # NumPy scalars become plain JSON numbers / booleans
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"array keys must be strings, got {key!r} of type {type(key).__name__}")
    if not key:
        raise ValueError("array keys must be non-empty strings, got ''")
    if "/" in key or "\\" in key or "\x00" in key:
        raise ValueError(f"array key {key!r} must not contain '/', '\\\\' or NUL")
    if key.startswith("__"):
        raise ValueError(f"array key {key!r} must not start with '__' (reserved for the format)")
    return key


def _check_array(key: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"array {key!r} cannot be converted to a NumPy array: {exc}") from exc
    if arr.dtype.kind not in _ALLOWED_KINDS or arr.dtype.hasobject:
        raise TypeError(
            f"array {key!r} has dtype {arr.dtype}; checkpoints hold only bool and numeric "
            "dtypes (no object, string, void/structured or datetime arrays)"
        )
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


# --------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------


def save_arrays(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any],
) -> None:
    """Write ``arrays`` and ``metadata`` to ``path`` atomically (format: see the module docstring).

    ``arrays``: keys are non-empty strings without ``/``, ``\\`` or NUL that do not start with
    ``__`` (``ValueError``; a non-string key is a ``TypeError``); values are arrays (or array
    likes) of bool or numeric dtype (``TypeError`` naming the key otherwise). ``metadata``: a
    mapping that JSON can represent (NumPy scalars are converted to Python numbers; NaN/Inf
    are refused with ``ValueError``, since JSON has no such numbers). :func:`load_arrays` returns
    it as parsed JSON: tuples come back as lists, dictionary keys as strings.

    Everything is validated before the file system is touched. The parent directory must exist
    (``FileNotFoundError`` naming the path; no directories are created). An existing file at
    ``path`` is replaced only once the new one is completely on disk; on any error it is left
    untouched and the temporary file is removed.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of name -> array, got {type(arrays).__name__}")
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata must be a mapping (a JSON object), got {type(metadata).__name__}"
        )
    checked = {_check_key(key): _check_array(key, value) for key, value in arrays.items()}

    try:
        text = json.dumps(dict(metadata), default=_json_default, allow_nan=False)
    except TypeError as exc:
        raise TypeError(f"metadata must be JSON-serializable: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"metadata must be JSON-serializable (no NaN or Inf): {exc}") from None
    normalized = json.loads(text)  # exactly what load_arrays will see
    canonical = _canonical_json(normalized)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "metadata": normalized,
        "sha256": _digest(checked, canonical),
    }
    header_bytes = np.frombuffer(_canonical_json(header).encode("utf-8"), dtype=np.uint8)

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot save checkpoint: directory {directory!r} does not exist",
            path,
        )
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # the umask applies, as for a file opened with open()
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(
                f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True
            ) as zf:
                _write_member(zf, _META_KEY, header_bytes)
                for key in sorted(checked):
                    _write_member(zf, key, checked[key])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _write_member(zf: zipfile.ZipFile, key: str, arr: np.ndarray) -> None:
    with zf.open(key + ".npy", "w", force_zip64=True) as member:  # as numpy.savez does
        np.lib.format.write_array(member, arr, allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


def load_arrays(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by :func:`save_arrays`: ``(arrays, metadata)``.

    The file is opened with ``numpy.load(..., allow_pickle=False)``; every member is read (so
    every zip CRC is checked) and the sha256 content digest is recomputed and compared.
    Arrays come back as fresh, writable, C-contiguous arrays with the dtypes and shapes that
    were saved. A missing file raises ``FileNotFoundError``; anything that is not an intact
    optimlab checkpoint (not a zip, truncated, CRC error, missing or malformed ``__optimlab__``
    member, unsupported format version, digest mismatch) raises :class:`CheckpointError`
    naming the path.
    """
    path = os.fspath(path)
    where = f"checkpoint {path!r}"
    with open(path, "rb") as fh:  # FileNotFoundError, IsADirectoryError, ... pass through
        magic = fh.read(4)
        if magic not in _ZIP_MAGIC:
            raise CheckpointError(
                f"{where} is not a zip archive (an .npz checkpoint); it may be truncated or "
                f"another kind of file (starts with {magic!r})"
            )
        fh.seek(0)
        try:
            members, raw_header = _read_members(fh, where)
        except CheckpointError:
            raise
        except zipfile.BadZipFile as exc:
            if "CRC" in str(exc):
                raise CheckpointError(f"{where} is corrupt: zip CRC check failed ({exc})") from exc
            raise CheckpointError(
                f"{where} is not a readable zip archive; it may be truncated or corrupt ({exc})"
            ) from exc
        except Exception as exc:  # whatever a damaged archive or .npy header makes fail
            raise CheckpointError(
                f"{where} is truncated or corrupt: {type(exc).__name__}: {exc}"
            ) from exc

    header = _parse_header(raw_header, where)
    metadata = header["metadata"]
    for key, arr in members.items():
        if arr.dtype.kind not in _ALLOWED_KINDS or arr.dtype.hasobject:
            raise CheckpointError(f"{where} holds array {key!r} of unsupported dtype {arr.dtype}")
    computed = _digest(members, _canonical_json(metadata))
    if not hmac.compare_digest(computed, header["sha256"]):
        raise CheckpointError(
            f"{where} is corrupt or was modified: content digest does not match "
            f"(stored sha256 {header['sha256'][:16]}..., computed {computed[:16]}...)"
        )
    return members, metadata


def _read_members(fh, where: str) -> tuple[dict[str, np.ndarray], Any]:
    with np.load(fh, allow_pickle=False) as npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - magic checked
            raise CheckpointError(f"{where} is not an .npz archive")
        names = npz.zip.namelist()
        odd = [name for name in names if not name.endswith(".npy")]
        if odd:
            raise CheckpointError(
                f"{where} is not an optimlab checkpoint: member(s) {odd!r} are not .npy arrays"
            )
        if len(set(names)) != len(names):
            raise CheckpointError(f"{where} has duplicate members")
        keys = [name[: -len(".npy")] for name in names]
        if _META_KEY not in keys:
            raise CheckpointError(
                f"{where} is not an optimlab checkpoint: it has no {_META_KEY!r} member "
                f"(it holds {sorted(keys)!r})"
            )
        members = {}
        raw_header = None
        for key in keys:
            arr = npz[key]
            if not isinstance(arr, np.ndarray):  # a member without the .npy magic
                raise CheckpointError(f"{where}: member {key + '.npy'!r} is not a .npy array")
            if key == _META_KEY:
                raw_header = arr
            else:
                if not (arr.flags.c_contiguous and arr.flags.writeable):
                    arr = arr.copy(order="C")
                members[key] = arr
    return members, raw_header


def _parse_header(raw: Any, where: str) -> dict:
    if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1):
        raise CheckpointError(
            f"{where} has a malformed {_META_KEY!r} member: expected a 1-D uint8 array of UTF-8 "
            f"JSON, got {getattr(raw, 'dtype', type(raw).__name__)} "
            f"of shape {getattr(raw, 'shape', '?')}"
        )
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not JSON, a number of 5000 digits
        raise CheckpointError(
            f"{where} has a {_META_KEY!r} member that is not JSON: {exc}"
        ) from None
    except RecursionError:  # JSON nested thousands deep: no checkpoint writes that
        raise CheckpointError(
            f"{where} has a {_META_KEY!r} member nested too deeply to be a checkpoint's"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise CheckpointError(
            f"{where} is not an optimlab checkpoint: format is {found!r}, expected {FORMAT!r}"
        )
    version = header.get("version")
    if version != VERSION or isinstance(version, bool):
        raise CheckpointError(
            f"{where} has unsupported format version {version!r} (this optimlab reads version "
            f"{VERSION})"
        )
    if not isinstance(header.get("metadata"), dict):
        raise CheckpointError(f"{where} has no metadata object in its {_META_KEY!r} member")
    digest = header.get("sha256")
    if not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise CheckpointError(f"{where} has no valid sha256 digest in its {_META_KEY!r} member")
    return header


# ---------------------------------------------------------------------------------------------
# The optimizer layer: an optimizer's state_dict (and optionally the parameters) in one file.
# ---------------------------------------------------------------------------------------------

_ARRAY_FIELDS = ("slots", "accumulators", "ema")


def _state_to_file_content(state: dict, params) -> tuple[dict[str, np.ndarray], dict]:
    arrays: dict[str, np.ndarray] = {}
    meta = {k: v for k, v in state.items() if k not in _ARRAY_FIELDS}
    lr = meta["config"].get("learning_rate")
    if callable(lr):
        raise TypeError(
            f"the optimizer's learning rate {lr!r} is a plain callable and cannot be saved; use "
            "a schedule from optimlab.schedules (they serialize) or a float"
        )
    for key, arr in state["slots"].items():
        name, index = key.rsplit("/", 1)
        arrays[f"slot.{name}.{index}"] = arr
    meta["slot_keys"] = sorted(state["slots"])
    for field in ("accumulators", "ema"):
        meta[f"has_{field}"] = state[field] is not None
        for i, arr in enumerate(state[field] or ()):
            arrays[f"{field}.{i}"] = arr
    meta["num_saved_params"] = 0 if params is None else len(params)
    for i, p in enumerate(params or ()):
        arrays[f"param.{i}"] = np.asarray(p)
    return arrays, meta


def save(path, optimizer, params=None) -> None:
    """Save ``optimizer.state_dict()`` (and the parameters, if given) to ``path``.

    The file is written atomically and carries a content digest (see the module docstring);
    :func:`restore` continues bit-identically, in this process or another.
    """
    params = None if params is None else list(params)
    arrays, meta = _state_to_file_content(optimizer.state_dict(), params)
    save_arrays(path, arrays, {"kind": "optimizer", "state": meta})


def load(path) -> tuple[dict, list[np.ndarray] | None]:
    """Read a file written by :func:`save`: returns ``(state_dict, params or None)``.

    Beyond :func:`load_arrays`'s checks, the optimizer layer's own fields are validated here
    (their kinds, and that the arrays they name are exactly the file's arrays); what the state
    means is checked by ``Optimizer.load_state_dict``. Anything else raises
    :class:`CheckpointError` naming the path and the field.
    """
    arrays, metadata = load_arrays(path)
    where = f"checkpoint {os.fspath(path)!r}"

    def bad(field: str, wanted: str, got: Any) -> CheckpointError:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:75] + " ...>"
        return CheckpointError(
            f"{where} is not an optimlab optimizer checkpoint: {field} must be {wanted}, got "
            f"{shown}"
        )

    if metadata.get("kind") != "optimizer":
        raise bad("metadata['kind']", "'optimizer'", metadata.get("kind"))
    meta = metadata.get("state")
    if not isinstance(meta, dict):
        raise bad("metadata['state']", "an object (the optimizer's state_dict)", meta)
    meta = dict(meta)
    for key in ("slot_keys", "has_accumulators", "has_ema", "num_saved_params", "num_params"):
        if key not in meta:
            raise bad(f"metadata['state'][{key!r}]", "present", None)
    slot_keys = meta.pop("slot_keys")
    if not (isinstance(slot_keys, list) and all(isinstance(k, str) for k in slot_keys)):
        raise bad("metadata['state']['slot_keys']", "a list of 'name/index' strings", slot_keys)
    slots, used = {}, set()
    for key in slot_keys:
        name, sep, index = key.rpartition("/")
        member = f"slot.{name}.{index}"
        if not (sep and name and index.isdigit() and member in arrays):
            raise bad("a slot key", "'name/index' naming an array of the file", key)
        slots[key] = arrays[member]
        used.add(member)
    counts = {}
    for key in ("num_params", "num_saved_params"):
        value = meta[key]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise bad(f"metadata['state'][{key!r}]", "an integer >= 0", value)
        if value > len(arrays):  # each counts arrays of the file (and a list of 10**30 names
            raise bad(  # would never fit in memory)
                f"metadata['state'][{key!r}]",
                f"at most the {len(arrays)} arrays of the file",
                value,
            )
        counts[key] = value
    state = dict(meta, slots=slots)
    for field in ("accumulators", "ema"):
        flag = state.pop(f"has_{field}")
        if not isinstance(flag, bool):
            raise bad(f"metadata['state']['has_{field}']", "true or false", flag)
        state[field] = None
        if flag:
            members = [f"{field}.{i}" for i in range(counts["num_params"])]
            missing = [m for m in members if m not in arrays]
            if missing:
                raise bad(f"the {field}", f"{counts['num_params']} arrays", f"no {missing[0]}")
            state[field] = [arrays[m] for m in members]
            used.update(members)
    n_params = counts["num_saved_params"]
    state.pop("num_saved_params")
    members = [f"param.{i}" for i in range(n_params)]
    missing = [m for m in members if m not in arrays]
    if missing:
        raise bad("the saved parameters", f"{n_params} arrays", f"no {missing[0]}")
    used.update(members)
    extra = sorted(set(arrays) - used)
    if extra:
        raise bad("every array", "named by the metadata", f"unnamed arrays {extra}")
    params = [arrays[m] for m in members] if n_params else None
    return state, params


def restore(path, optimizer, params=None) -> list[np.ndarray] | None:
    """Load the file at ``path`` into ``optimizer`` (see :meth:`Optimizer.load_state_dict`).

    If the file holds parameters and ``params`` are given, their values are copied into
    ``params``. Everything (the file, the state, the target arrays) is checked before the
    optimizer or any array changes. Returns the saved parameters (or None).
    """
    from ._validation import check_no_overlap
    from .optimizer_checks import _as_list, _check_param

    state, saved = load(path)
    targets = None if params is None else _as_list("params", params, arrays=True)
    if targets is not None:
        for i, dst in enumerate(targets):
            _check_param(dst, i)
        check_no_overlap(targets)
    if targets is not None and saved is not None:
        if len(saved) != len(targets):
            raise ValueError(f"checkpoint holds {len(saved)} parameters, got {len(targets)}")
        for i, (src, dst) in enumerate(zip(saved, targets, strict=True)):
            if src.shape != dst.shape or src.dtype != dst.dtype:
                raise ValueError(
                    f"parameter {i}: checkpoint has shape {src.shape} {src.dtype}, the target "
                    f"{dst.shape} {dst.dtype}"
                )
    build_with = targets if (targets is not None and not optimizer.built) else None
    optimizer.load_state_dict(state, build_with)
    if targets is not None and saved is not None:
        for src, dst in zip(saved, targets, strict=True):
            dst[...] = src
    return saved
