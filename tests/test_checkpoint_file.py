"""The checkpoint file layer: round trips, corruption, tampering, atomic replacement."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from optimlab import checkpoint
from optimlab.checkpoint import CheckpointError, load_arrays, save_arrays

METADATA = {
    "optimizer": "Adam",
    "step": 12,
    "hyperparameters": {"learning_rate": 0.001, "betas": [0.9, 0.999], "amsgrad": False},
    "history": [{"loss": 1.5}, {"loss": 0.25, "note": "ünïcödé"}],
    "nothing": None,
}


def sample_arrays():
    return {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "m": np.linspace(-1, 1, 5),
        "count": np.array([1, -2, 3], dtype=np.int64),
        "mask": np.array([[True, False], [False, True]]),
        "scalar": np.array(3.25),
        "t": np.array(7, dtype=np.int64),
        "empty": np.empty((0, 3), dtype=np.float64),
        "u8": np.array([0, 255], dtype=np.uint8),
    }


def assert_same(loaded, original):
    assert set(loaded) == set(original)
    for key, arr in original.items():
        got = loaded[key]
        assert got.dtype == arr.dtype, key
        assert got.shape == arr.shape, key
        np.testing.assert_array_equal(got, arr)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_arrays(path, sample_arrays(), METADATA)
    return path


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip(saved):
    arrays, metadata = load_arrays(saved)
    assert_same(arrays, sample_arrays())
    assert metadata == METADATA
    for arr in arrays.values():
        assert arr.flags.c_contiguous and arr.flags.writeable
        arr[...] = 0  # writable, and independent of the file
    again, _ = load_arrays(saved)
    assert_same(again, sample_arrays())


def test_round_trip_str_path_and_unusual_arrays(tmp_path):
    arrays = {
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "strided": np.arange(10.0)[::3],
        "big_endian": np.arange(3, dtype=">f8"),
        "complex": np.array([1 + 2j, -3j]),
        "half": np.array([0.5, 1.5], dtype=np.float16),
        "bool0d": np.array(True),
        "name with spaces.and.dots": np.zeros(2),
        "ünï": np.ones(1, dtype=np.int8),
    }
    path = str(tmp_path / "x.npz")
    save_arrays(path, arrays, {})
    loaded, metadata = load_arrays(path)
    assert metadata == {}
    assert_same(loaded, arrays)
    assert all(a.flags.c_contiguous for a in loaded.values())


def test_file_is_a_plain_npz(saved):
    with np.load(saved, allow_pickle=False) as npz:
        assert set(npz.files) == set(sample_arrays()) | {"__optimlab__"}
        header = json.loads(npz["__optimlab__"].tobytes().decode("utf-8"))
        np.testing.assert_array_equal(npz["w"], sample_arrays()["w"])
    assert header["format"] == "optimlab-checkpoint"
    assert header["version"] == 1
    assert header["metadata"] == METADATA
    assert len(header["sha256"]) == 64
    with zipfile.ZipFile(saved) as zf:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())


def test_digest_is_independent_of_insertion_order(tmp_path):
    arrays = sample_arrays()
    save_arrays(tmp_path / "a.npz", arrays, {"b": 1, "a": 2})
    save_arrays(tmp_path / "b.npz", dict(reversed(list(arrays.items()))), {"a": 2, "b": 1})
    digests = []
    for name in ("a.npz", "b.npz"):
        with np.load(tmp_path / name) as npz:
            digests.append(json.loads(npz["__optimlab__"].tobytes())["sha256"])
    assert digests[0] == digests[1]


def test_metadata_numpy_scalars_and_tuples(tmp_path):
    path = tmp_path / "c.npz"
    save_arrays(path, {}, {"step": np.int64(3), "lr": np.float32(0.1), "pair": (1, 2)})
    _, metadata = load_arrays(path)
    assert metadata == {"step": 3, "lr": float(np.float32(0.1)), "pair": [1, 2]}


def test_overwrite_replaces_content(saved):
    save_arrays(saved, {"only": np.ones(2)}, {"v": 2})
    arrays, metadata = load_arrays(saved)
    assert list(arrays) == ["only"] and metadata == {"v": 2}
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# -- damaged and foreign files ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["empty", "first_byte", "quarter", "middle", "last_byte"])
def test_truncated_file(saved, where):
    data = saved.read_bytes()
    size = {
        "empty": 0,
        "first_byte": 1,
        "quarter": len(data) // 4,
        "middle": len(data) // 2,
        "last_byte": len(data) - 1,
    }[where]
    saved.write_bytes(data[:size])
    with pytest.raises(CheckpointError, match="ckpt.npz"):
        load_arrays(saved)


def test_flipped_byte_in_array_data(saved):
    data = bytearray(saved.read_bytes())
    payload = sample_arrays()["m"].tobytes()
    start = data.find(payload)
    assert start > 0
    data[start + len(payload) // 2] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"CRC|digest") as info:
        load_arrays(saved)
    assert "ckpt.npz" in str(info.value)


def test_flipped_byte_anywhere_never_loads_silently(saved):
    data = saved.read_bytes()
    original = sample_arrays()
    for offset in range(0, len(data), max(1, len(data) // 97)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        saved.write_bytes(bytes(damaged))
        try:
            arrays, metadata = load_arrays(saved)
        except CheckpointError:
            continue
        # a flip in a field zipfile ignores (e.g. a timestamp) may load: then it must be intact
        assert_same(arrays, original)
        assert metadata == METADATA


def rewrite_with_savez(path, change):
    """Rewrite ``path`` with numpy.savez (valid zip CRCs), keeping its __optimlab__ member."""
    with np.load(path, allow_pickle=False) as npz:
        members = {key: npz[key] for key in npz.files}
    change(members)
    os.remove(path)
    np.savez(path, **members)


def test_tampered_array_with_valid_crcs(saved):
    def change(members):
        members["w"][1, 2] += 1.0

    rewrite_with_savez(saved, change)
    with zipfile.ZipFile(saved) as zf:
        assert zf.testzip() is None  # every CRC is fine
    with pytest.raises(CheckpointError, match=r"corrupt or was modified: content digest does not"):
        load_arrays(saved)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.pop("mask"),
        lambda m: m.update(extra=np.zeros(1)),
        lambda m: m.update(t=np.array(7, dtype=np.int32)),  # same value, other dtype
        lambda m: m.update(m=m["m"].reshape(5, 1)),  # same bytes, other shape
    ],
    ids=["dropped", "added", "dtype", "shape"],
)
def test_other_tampering_is_detected(saved, change):
    rewrite_with_savez(saved, change)
    with pytest.raises(CheckpointError, match="digest"):
        load_arrays(saved)


def test_tampered_metadata(saved):
    def change(members):
        header = json.loads(members["__optimlab__"].tobytes())
        header["metadata"]["step"] = 13
        members["__optimlab__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    rewrite_with_savez(saved, change)
    with pytest.raises(CheckpointError, match="digest"):
        load_arrays(saved)


def write_header(path, header_bytes):
    np.savez(path, a=np.zeros(2), __optimlab__=np.frombuffer(header_bytes, dtype=np.uint8))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"{not json", r"not JSON"),
        (b"\xff\xfe", r"not JSON"),
        (b"[1, 2]", r"not an optimlab checkpoint: format"),
        (b'{"format": "other", "version": 1}', r"format is 'other'"),
        (
            b'{"format": "optimlab-checkpoint", "version": 2, "metadata": {}, "sha256": ""}',
            r"unsupported format version 2",
        ),
        (b'{"format": "optimlab-checkpoint", "version": 1, "sha256": ""}', r"metadata"),
        (b'{"format": "optimlab-checkpoint", "version": 1, "metadata": {}}', r"sha256"),
    ],
)
def test_bad_header(tmp_path, header, match):
    path = tmp_path / "bad.npz"
    write_header(path, header)
    with pytest.raises(CheckpointError, match=match) as info:
        load_arrays(path)
    assert "bad.npz" in str(info.value)


def test_valid_npz_that_is_not_ours(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(CheckpointError, match=r"foreign\.npz.*no '__optimlab__' member"):
        load_arrays(path)


def test_other_kinds_of_files(tmp_path):
    npy = tmp_path / "plain.npy"
    np.save(npy, np.arange(3))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path in (npy, text):
        with pytest.raises(CheckpointError, match=r"not a zip archive"):
            load_arrays(path)
    zipped = tmp_path / "raw.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match=r"not \.npy arrays"):
        load_arrays(zipped)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_arrays(tmp_path / "nope.npz")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
    assert "CheckpointError" in checkpoint.__all__


# -- atomicity ----------------------------------------------------------------------------------


def test_failed_replace_keeps_previous_checkpoint(saved, monkeypatch):
    before = saved.read_bytes()

    def failing_replace(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        save_arrays(saved, {"w": np.full(3, 99.0)}, {"step": 99})
    monkeypatch.undo()
    assert saved.read_bytes() == before
    arrays, metadata = load_arrays(saved)
    assert_same(arrays, sample_arrays())
    assert metadata == METADATA
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_arrays(tmp_path / "new.npz", {"w": np.ones(3)}, {})
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "c.npz"
    with pytest.raises(FileNotFoundError, match=r"does not exist") as info:
        save_arrays(target, {"w": np.ones(1)}, {})
    assert info.value.filename == str(target)
    assert str(target) in str(info.value)
    assert not (tmp_path / "no").exists()


# -- refused content ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype_text"),
    [
        (np.array([1, "a"], dtype=object), "object"),
        (np.array(["a", "bc"]), "<U2"),
        (np.array([b"x"]), "S1"),
        (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), r"\[\("),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "datetime64"),
    ],
)
def test_non_numeric_arrays_rejected(tmp_path, value, dtype_text):
    with pytest.raises(TypeError, match=rf"array 'bad' has dtype .*{dtype_text}"):
        save_arrays(tmp_path / "c.npz", {"ok": np.ones(1), "bad": value}, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        ("", ValueError, r"non-empty"),
        ("a/b", ValueError, r"'a/b' must not contain '/'"),
        ("a\\b", ValueError, r"must not contain"),
        ("a\x00b", ValueError, r"must not contain"),
        ("__optimlab__", ValueError, r"must not start with '__'"),
        ("__x", ValueError, r"'__x' must not start with '__'"),
        (3, TypeError, r"keys must be strings, got 3"),
    ],
)
def test_bad_keys_rejected(tmp_path, key, error, match):
    with pytest.raises(error, match=match):
        save_arrays(tmp_path / "c.npz", {key: np.ones(1)}, {})
    assert list(tmp_path.iterdir()) == []


def test_bad_metadata_rejected(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match=r"metadata must be JSON-serializable"):
        save_arrays(path, {}, {"a": object()})
    with pytest.raises(TypeError, match=r"metadata must be JSON-serializable"):
        save_arrays(path, {}, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match=r"NaN or Inf"):
        save_arrays(path, {}, {"lr": float("nan")})
    with pytest.raises(TypeError, match=r"metadata must be a mapping"):
        save_arrays(path, {}, [("a", 1)])
    with pytest.raises(TypeError, match=r"arrays must be a mapping"):
        save_arrays(path, [np.ones(1)], {})
    assert list(tmp_path.iterdir()) == []
