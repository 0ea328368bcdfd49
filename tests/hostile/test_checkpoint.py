"""Checkpoint files against truncation, flipped bytes, forged content with a valid digest
(anyone can call ``save_arrays``), wrong versions and foreign files: a refused load raises
``CheckpointError`` (a ValueError) or the state's ValueError/TypeError, and leaves the
optimizer, the parameters and every file on disk as they were. Refused saves write nothing."""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import checkpoint as ck

from .registry import HOSTILE, Int
from .world import accepted, refuses


def trained(steps=3, **options):
    opt = ol.Adam(0.05, **options)
    params = [np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(0, 1, 4)]
    for k in range(steps):
        opt.apply([np.full((2, 3), 0.1 * k), np.full(4, -0.2)], params)
    return opt, params


@pytest.fixture
def saved(tmp_path):
    opt, params = trained(use_ema=True)
    path = tmp_path / "good.npz"
    opt.save(path, params)
    return path, opt, params


def target():
    return trained(steps=1)


def test_restore_resumes_bit_identically(saved, tmp_path):
    path, source, source_params = saved
    restored = ol.Adam()
    params = [np.zeros((2, 3)), np.zeros(4)]
    ck.restore(path, restored, params)
    for k in range(3):
        g = [np.full((2, 3), 0.3 - 0.1 * k), np.full(4, 0.05 * k)]
        restored.apply(g, params)
        source.apply(g, source_params)
    for a, b in zip(params, source_params, strict=True):
        np.testing.assert_array_equal(a, b)
    accepted()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_truncated_files(saved, tmp_path, cut):
    path, _, _ = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[: int(len(data) * cut)])
    opt, params = target()
    refuses(
        lambda: opt.load(bad, params),
        world=(opt, params, tmp_path),
        exc=ck.CheckpointError,
        says=(str(bad),),
    )


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 0.999), xor=st.integers(1, 255))
def test_flipped_bytes(saved, tmp_path, where, xor):
    """A flipped byte is a CheckpointError, or (in a byte no content depends on, such as a
    zip timestamp) a file that loads exactly as the intact one."""
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= xor
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    opt, params = target()
    try:
        refuses(
            lambda: opt.load(bad, params),
            world=(opt, params, tmp_path),
            exc=ck.CheckpointError,
            says=("checkpoint",),
        )
    except pytest.fail.Exception:
        intact, intact_params = target()
        intact.load(path, intact_params)
        from .world import snapshot

        assert snapshot(opt, params)[1:] == snapshot(intact, intact_params)[1:]
        assert opt.state_dict()["slots"].keys() == intact.state_dict()["slots"].keys()
        for key, value in opt.state_dict()["slots"].items():
            np.testing.assert_array_equal(value, intact.state_dict()["slots"][key])
        accepted()


def _forge(path, tmp_path, mutate):
    """A file with consistent CRCs and digest, whose content ``mutate`` changed."""
    arrays, metadata = ck.load_arrays(path)
    arrays = {k: v.copy() for k, v in arrays.items()}
    metadata = copy.deepcopy(metadata)
    mutate(arrays, metadata)
    bad = tmp_path / "forged.npz"
    ck.save_arrays(bad, arrays, metadata)
    return bad


def _set(key, value):
    return lambda a, m: m["state"].__setitem__(key, value)


FORGED = [
    ("kind", lambda a, m: m.__setitem__("kind", "model"), ["metadata['kind']"]),
    ("state a list", lambda a, m: m.__setitem__("state", [1]), ["metadata['state']"]),
    ("no slot_keys", lambda a, m: m["state"].pop("slot_keys"), ["'slot_keys'"]),
    ("slot_keys ints", _set("slot_keys", [1, 2]), ["slot_keys"]),
    ("slot key without slash", _set("slot_keys", ["m"]), ["slot key", "'m'"]),
    ("slot key naming no array", _set("slot_keys", ["m/9"]), ["'m/9'"]),
    ("has_ema a string", _set("has_ema", "yes"), ["has_ema", "'yes'"]),
    ("has_accumulators true", _set("has_accumulators", True), ["accumulators"]),
    ("num_saved_params -1", _set("num_saved_params", -1), ["num_saved_params", "-1"]),
    ("num_saved_params a float", _set("num_saved_params", 2.0), ["num_saved_params"]),
    ("num_saved_params huge", _set("num_saved_params", 10**30), ["num_saved_params", "at most"]),
    ("num_params huge", _set("num_params", 10**30), ["num_params", "at most"]),
    ("num_params a bool", _set("num_params", True), ["num_params", "True"]),
    ("an array removed", lambda a, m: a.pop("slot.v.1"), ["slot key", "'v/1'"]),
    (
        "an unnamed array",
        lambda a, m: a.__setitem__("extra", np.ones(2)),
        ["unnamed arrays ['extra']"],
    ),
    (
        "a slot of another dtype",
        lambda a, m: a.__setitem__("slot.m.0", a["slot.m.0"].astype(np.float32)),
        ["state['slots']['m/0']", "float32"],
    ),
    (
        "a slot of another shape",
        lambda a, m: a.__setitem__("slot.m.0", np.ones(7)),
        ["state['slots']['m/0']", "(2, 3)"],
    ),
    (
        "a parameter of another shape",
        lambda a, m: a.__setitem__("param.0", np.ones(7)),
        ["parameter 0", "(7,)"],
    ),
    (
        "an integer slot",
        lambda a, m: a.__setitem__("slot.v.0", np.ones((2, 3), np.int64)),
        ["int64"],
    ),
    ("iterations negative", _set("iterations", -4), ["state['iterations']", "-4"]),
    ("iterations huge", _set("iterations", 10**30), ["state['iterations']"]),
    ("micro_step", _set("micro_step", 2), ["state['micro_step']"]),
    ("param_steps", _set("param_steps", [1, "x"]), ["state['param_steps'][1]"]),
    ("another optimizer", _set("optimizer", "SGD"), ["saved by 'SGD'"]),
    (
        "a bad hyperparameter",
        lambda a, m: m["state"]["config"].__setitem__("beta_2", 1.0),
        ["beta_2", "1.0"],
    ),
    (
        "a bad schedule",
        lambda a, m: m["state"]["config"].__setitem__(
            "learning_rate", {"class_name": "X", "config": {}}
        ),
        ["'X'"],
    ),
    (
        "a huge learning rate",
        lambda a, m: m["state"]["config"].__setitem__("learning_rate", 10**400),
        ["learning_rate", "e+400"],
    ),
    (
        "a config key missing",
        lambda a, m: m["state"]["config"].pop("epsilon"),
        ["lacks ['epsilon']"],
    ),
]


@pytest.mark.parametrize("label,mutate,says", FORGED, ids=[f[0] for f in FORGED])
def test_forged_files(saved, tmp_path, label, mutate, says):
    path, _, _ = saved
    bad = _forge(path, tmp_path, mutate)
    opt, params = target()
    refuses(lambda: opt.load(bad, params), world=(opt, params, tmp_path), says=tuple(says))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_metadata_field_forged_with_hostile_json(saved, tmp_path, data):
    path, _, _ = saved
    _, metadata = ck.load_arrays(path)
    field = data.draw(st.sampled_from(sorted(metadata["state"])))
    value = data.draw(HOSTILE.filter(lambda v: _jsonable(v)))
    bad = _forge(path, tmp_path, _set(field, value))
    opt, params = target()
    original = metadata["state"][field]
    counters = {"iterations": Int(0), "skipped_steps": Int(0), "micro_step": Int(0, 0)}
    same = json.dumps(value, sort_keys=True) == json.dumps(original, sort_keys=True)
    if same or (field in counters and counters[field].verdict(value)[0] == "accept"):
        opt.load(bad, params)
        accepted()
        return
    refuses(lambda: opt.load(bad, params), world=(opt, params, tmp_path))


def _jsonable(value) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


HEADERS = [
    ("wrong format", {"format": "other"}, ["format is 'other'"]),
    ("version 2", {"version": 2}, ["unsupported format version 2"]),
    ("version true", {"version": True}, ["unsupported format version True"]),
    ("no metadata", {"metadata": None}, ["no metadata"]),
    ("bad digest", {"sha256": "xyz"}, ["no valid sha256"]),
    ("stale digest", {"sha256": "0" * 64}, ["digest does not match"]),
]


@pytest.mark.parametrize("label,change,says", HEADERS, ids=[h[0] for h in HEADERS])
def test_headers(saved, tmp_path, label, change, says):
    path, _, _ = saved
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "__optimlab__.npy":
                import io

                raw = np.load(io.BytesIO(data))
                header = json.loads(raw.tobytes())
                header.update(change)
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
                data = buf.getvalue()
            dst.writestr(info, data)
    opt, params = target()
    refuses(
        lambda: opt.load(bad, params),
        world=(opt, params, tmp_path),
        exc=ck.CheckpointError,
        says=tuple(says),
    )


def test_a_header_nested_thousands_deep(tmp_path):
    """json.loads raised a bare RecursionError for a crafted header."""
    text = (
        '{"format":"optimlab-checkpoint","version":1,"metadata":{"x":'
        + "[" * 100000
        + "]" * 100000
        + "}}"
    )
    bad = tmp_path / "deep.npz"
    with zipfile.ZipFile(bad, "w") as zf, zf.open("__optimlab__.npy", "w") as member:
        np.lib.format.write_array(member, np.frombuffer(text.encode(), np.uint8))
    opt, params = target()
    refuses(
        lambda: opt.load(bad, params),
        world=(opt, params, tmp_path),
        exc=ck.CheckpointError,
        says=("nested too deeply",),
    )


def test_a_header_with_a_number_of_5000_digits(tmp_path):
    """json.loads raised a bare ValueError (Python's limit on integer digits) that named
    no file."""
    text = '{"format":"optimlab-checkpoint","version":1,"metadata":{"x":' + "9" * 5000 + "}}"
    bad = tmp_path / "digits.npz"
    with zipfile.ZipFile(bad, "w") as zf, zf.open("__optimlab__.npy", "w") as member:
        np.lib.format.write_array(member, np.frombuffer(text.encode(), np.uint8))
    opt, params = target()
    refuses(
        lambda: opt.load(bad, params),
        world=(opt, params, tmp_path),
        exc=ck.CheckpointError,
        says=(str(bad), "not JSON"),
    )


def test_foreign_files(tmp_path):
    opt, params = target()
    for name, content in [("empty.npz", b""), ("text.npz", b"hello world"), ("zip.npz", None)]:
        path = tmp_path / name
        if content is None:
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("notes.txt", "hi")
        else:
            path.write_bytes(content)
        refuses(
            lambda path=path: opt.load(path, params),
            world=(opt, params, tmp_path),
            exc=ck.CheckpointError,
            says=(name,),
        )  # noqa: B023
    np.savez(tmp_path / "numpy.npz", a=np.ones(2))
    refuses(
        lambda: opt.load(tmp_path / "numpy.npz", params),
        world=(opt, params, tmp_path),
        exc=ck.CheckpointError,
        says=("'__optimlab__'",),
    )


def test_restore_checks_the_targets_first(saved, tmp_path):
    """A read-only (or non-array, or aliasing) target used to fail after the optimizer had
    been restored: half a restore."""
    path, _, _ = saved
    opt, params = target()
    frozen = [params[0].copy(), params[1].copy()]
    frozen[1].flags.writeable = False
    refuses(
        lambda: ck.restore(path, opt, frozen),
        world=(opt, params, frozen, tmp_path),
        says=("parameter 1", "read-only"),
    )
    refuses(
        lambda: ck.restore(path, opt, [params[0], [0.0] * 4]),
        world=(opt, params, tmp_path),
        says=("parameter 1", "NumPy array"),
    )
    buf = np.zeros(10)
    refuses(
        lambda: ck.restore(path, opt, [buf[:6].reshape(2, 3), buf[5:9]]),
        world=(opt, params, tmp_path),
        says=("share memory",),
    )
    refuses(
        lambda: ck.restore(path, opt, [params[0]]),
        world=(opt, params, tmp_path),
        says=("holds 2 parameters",),
    )
    refuses(
        lambda: ck.restore(path, opt, np.zeros((2, 3))),
        world=(opt, params, tmp_path),
        says=("params",),
    )


def test_refused_saves_write_nothing(tmp_path):
    existing = tmp_path / "keep.npz"
    opt, params = trained()
    opt.save(existing, params)
    cases = [
        (ol.SGD(learning_rate=lambda step: 0.1), None, TypeError, "plain callable"),
        (opt, [params[0], "junk"], TypeError, "param.1"),
        (opt, [params[0], np.array(["a"])], TypeError, "param.1"),
    ]
    for who, with_params, exc, says in cases:
        if who is not opt:
            who.apply_gradients([(np.ones(2), np.ones(2))])
        refuses(
            lambda who=who, with_params=with_params: who.save(existing, with_params),
            world=(opt, params, tmp_path),
            exc=exc,
            says=(says,),
        )  # noqa: B023
    refuses(
        lambda: opt.save(tmp_path / "no" / "such" / "dir.npz", params),
        world=(opt, tmp_path),
        exc=FileNotFoundError,
        says=("does not exist",),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]  # no temporary left
