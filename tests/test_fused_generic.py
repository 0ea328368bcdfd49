"""The fused engine runs a rule it has never seen: one module with SLOTS, scalars and update.

The toy rule below lives in a file written to a temporary directory, so that nothing in
optimlab names it; ``fused.apply`` and ``fused.Kernel`` must run it bit for bit as the
reference engine (NumPy on whole arrays) does, in float32 and float64, with its optional slot
on and off, on the serial and the parallel loop.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from optimlab.engines import fused, reference

TOY_RULE = '''
"""Sign descent with a decaying accumulator (a toy rule of the tests)::

    a = rho * a + g^2                        (required slot)
    m = beta * m + (1 - beta) * g            (optional slot, with momentum)
    p = p - lr * sign(m or g) / sqrt(a + epsilon)
"""

import numpy as np

SLOTS = (("accumulator", "required"), ("momentum", "optional"))


def scalars(t, lr, *, rho, beta, epsilon):
    return (lr, rho, beta, 1.0 - beta, epsilon, beta > 0.0)


def update(p, g, a, m, lr, rho, beta, one_minus_beta, epsilon, use_momentum):
    a = rho * a + g * g
    d = g
    if use_momentum:
        m = beta * m + one_minus_beta * g
        d = m
    return p - lr * np.sign(d) / np.sqrt(a + epsilon), a, m
'''
NAME = "optimlab_test_toy_sign_descent"
SERIAL, PARALLEL = 7, fused.PARALLEL_THRESHOLD + 3  # the sizes of the two loops


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as any imported module (numba looks its globals up there)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy_rule") / f"{NAME}.py"
    path.write_text(TOY_RULE)
    yield _import(path, NAME)
    sys.modules.pop(NAME, None)


def _state(rng, n, dtype, momentum):
    p = rng.standard_normal(n).astype(dtype)
    slots = [np.zeros(n, dtype), np.zeros(n, dtype) if momentum else None]
    return p, slots


# (n, dtype, momentum): momentum 0 switches the optional slot off (None). On a fresh checkout
# each case compiles its loop (about a second), so the parallel loop runs only two of them.
CASES = [(SERIAL, dtype, momentum) for dtype in (np.float32, np.float64) for momentum in (0.9, 0.0)]
CASES += [(PARALLEL, np.float32, 0.9), (PARALLEL, np.float64, 0.0)]


@pytest.mark.parametrize("n, dtype, momentum", CASES)
def test_a_new_rule_runs_fused_bit_for_bit_as_numpy(toy, n, dtype, momentum):
    rng = np.random.default_rng(0)
    p_ref, slots_ref = _state(rng, n, dtype, momentum)
    p_apply, slots_apply = p_ref.copy(), [None if s is None else s.copy() for s in slots_ref]
    p_kernel, slots_kernel = p_ref.copy(), [None if s is None else s.copy() for s in slots_ref]
    g_kernel = np.zeros(n, dtype)  # a Kernel keeps its arrays: the gradient is refilled
    kernel = fused.Kernel(toy, p_kernel, g_kernel, slots_kernel)
    for t in range(1, 4):
        g = rng.standard_normal(n).astype(dtype)
        g[:3] = 0.0  # sign(0) = 0
        scalars = toy.scalars(t, 0.01 * t, rho=0.9, beta=momentum, epsilon=1e-8)
        cast = tuple(s if isinstance(s, bool) else dtype(s) for s in scalars)
        reference.apply(toy, p_ref, g, slots_ref, cast)
        fused.apply(toy, p_apply, g, slots_apply, scalars)
        g_kernel[...] = g
        kernel(scalars, fused.NO_PIPELINE)
    assert slots_apply[1] is None or momentum
    for p, slots in ((p_apply, slots_apply), (p_kernel, slots_kernel)):
        np.testing.assert_array_equal(p, p_ref)
        for got, want in zip(slots, slots_ref, strict=True):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_array_equal(got, want)
    assert not np.array_equal(p_ref, _state(np.random.default_rng(0), n, dtype, momentum)[0])


def test_the_loops_are_derived_from_slots_and_keyed_by_the_rules_source(toy, tmp_path):
    text = fused.loop_source(toy)
    assert "v1 = gi if s1 is None else s1[i]" in text and "    s0[i] = v0\n" in text
    assert "#   s1: 'momentum' (optional)" in text
    # the same rule edited (one character): a new file and key; the old one is removed
    name, files = "optimlab_test_keyed_rule", []
    try:
        for k, source in enumerate([TOY_RULE, TOY_RULE.replace("p - lr", "p - (lr)")]):
            (tmp_path / str(k)).mkdir()
            (tmp_path / str(k) / f"{name}.py").write_text(source)
            rule = _import(tmp_path / str(k) / f"{name}.py", name)
            loop = fused.loop(rule, 1)  # generated, not compiled
            files.append(loop.py_func.__code__.co_filename)
            assert open(files[-1]).read() == fused.loop_source(rule)
        assert files[0] != files[1] and os.path.exists(files[1])
        own = os.path.join(os.path.dirname(fused.__file__), "__pycache__", "fused_loops")
        assert os.path.exists(files[0]) == (os.path.dirname(files[0]) != own)  # (pruned there)
    finally:
        sys.modules.pop(name, None)
        for path in files:
            if os.path.exists(path):
                os.remove(path)


def test_an_edited_helper_of_the_rule_changes_the_key(tmp_path):
    """A helper the rule's update calls (as rules call ``_scalar.where``) is compiled into the
    loops: the same rule file beside an edited helper file gets a new key; beside the same
    helper, the same key."""
    rule_source = TOY_RULE.replace(
        "import numpy as np", "import numpy as np\nfrom optimlab_test_helper import half"
    ).replace("np.sqrt(a + epsilon)", "np.sqrt(half(a) + epsilon)")
    keys = []
    try:
        for k, body in enumerate(["return x", "return x", "return x + 0.0 * x"]):
            folder = tmp_path / str(k)
            folder.mkdir()
            (folder / "optimlab_test_helper.py").write_text(f"def half(x):\n    {body}\n")
            (folder / "optimlab_test_helped_rule.py").write_text(rule_source)
            _import(folder / "optimlab_test_helper.py", "optimlab_test_helper")
            rule = _import(folder / "optimlab_test_helped_rule.py", "optimlab_test_helped_rule")
            assert fused._helper_files(rule.update) == [str(folder / "optimlab_test_helper.py")]
            keys.append(fused._generate(rule)[1])
    finally:
        sys.modules.pop("optimlab_test_helper", None)
        sys.modules.pop("optimlab_test_helped_rule", None)
    assert keys[0] == keys[1] != keys[2]


def test_a_second_process_loads_the_loops_from_numbas_cache(toy):
    p = np.zeros(3)
    fused.apply(
        toy,
        p,
        np.ones(3),
        [np.zeros(3), None],
        toy.scalars(1, 0.1, rho=0.9, beta=0.0, epsilon=1e-8),
    )
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        import numpy as np
        from optimlab.engines import fused
        spec = importlib.util.spec_from_file_location({NAME!r}, {toy.__file__!r})
        toy = sys.modules[{NAME!r}] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(toy)
        scalars = toy.scalars(1, 0.1, rho=0.9, beta=0.0, epsilon=1e-8)
        fused.apply(toy, np.zeros(3), np.ones(3), [np.zeros(3), None], scalars)
        stats = fused.loop(toy, 3).stats
        print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "0"]


def test_a_rule_that_is_not_elementwise_is_refused_and_nothing_changes():
    from optimlab import rules

    p = np.ones(4)
    with pytest.raises(TypeError, match="rule='optimlab.rules.muon' is not an elementwise rule"):
        fused.apply(rules.muon, p, np.ones(4), [np.zeros(4), None], ())
    np.testing.assert_array_equal(p, np.ones(4))
    assert not fused.elementwise(rules.muon) and fused.elementwise(rules.adam)


def test_a_slot_of_an_unknown_kind_is_refused_with_its_name(toy, monkeypatch):
    monkeypatch.setattr(toy, "SLOTS", (("accumulator", "required"), ("momentum", "sometimes")))
    with pytest.raises(ValueError, match=r"the slot \('momentum', 'sometimes'\).*'optional'"):
        fused.loop_source(toy)


def test_no_two_kernels_share_an_entry_of_numbas_cache():
    """numba keys its cache by file, name and first line, not by ``parallel=True``: one function
    compiled both ways would load whichever was compiled first for both (a parallel finite check
    on a 2-element gradient costs hundreds of microseconds on a busy machine)."""
    from numba.core.registry import CPUDispatcher

    kernels = [f for f in vars(fused).values() if isinstance(f, CPUDispatcher)]
    functions = [f.py_func for f in kernels]
    keys = {(f.__code__.co_filename, f.__qualname__, f.__code__.co_firstlineno) for f in functions}
    assert len(keys) == len(kernels) >= 7
