"""Scaling laws: the numpy reference and the PyTensor graph are the same function."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesmix.errors import InputError
from bayesmix.laws.scaling import JointScalingLaw, SizeLaw, StepLaw, check_scale_inputs, get_scaling_law

LAWS = [StepLaw(), SizeLaw(), JointScalingLaw()]


def _compiled(law):
    symbols = {name: pt.dvector(name) for name in law.parameters}
    inputs = {name: pt.dvector(name) for name in law.inputs}
    out = law.evaluate(symbols, inputs, xp=pt)
    return pytensor.function([*symbols.values(), *inputs.values()], out), list(symbols), list(inputs)


COMPILED = {law.name: _compiled(law) for law in LAWS}

positive = st.floats(1e6, 1e12, allow_nan=False)
exponent = st.floats(0.05, 1.0)
log_scale = st.floats(-2.0, 12.0)
irreducible = st.floats(0.5, 4.0)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_numpy_and_pytensor_agree(law, data):
    n = data.draw(st.integers(1, 5))
    params = {}
    for name in law.parameters:
        strategy = irreducible if name == "E" else exponent if name in law.exponents else log_scale
        params[name] = np.array(data.draw(st.lists(strategy, min_size=n, max_size=n)))
    inputs = {name: np.array(data.draw(st.lists(positive, min_size=n, max_size=n))) for name in law.inputs}
    function, param_names, input_names = COMPILED[law.name]
    graph = function(*[params[k] for k in param_names], *[inputs[k] for k in input_names])
    reference = law.evaluate(params, inputs, xp=np)
    np.testing.assert_allclose(graph, reference, rtol=1e-10)


def test_joint_law_is_chinchilla_form():
    params = {"E": 1.69, "log_A": np.log(406.4), "alpha": 0.34, "log_B": np.log(410.7), "beta": 0.28}
    n, d = 7e10, 1.4e12
    expected = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    assert JointScalingLaw().evaluate(params, {"model_size": n, "tokens": d}) == pytest.approx(expected)


def test_laws_broadcast_posterior_draws_over_curves():
    law = StepLaw()
    params = {"E": np.full((100, 4), 2.0), "log_B": np.full((100, 4), 5.0), "beta": np.full((100, 4), 0.3)}
    out = law.evaluate(params, {"tokens": np.asarray(1e10)})
    assert out.shape == (100, 4)
    assert np.all(law.reducible(params, {"tokens": np.asarray(1e10)}) > 0)


def test_names_and_errors():
    assert get_scaling_law("joint").parameters == ("E", "log_A", "alpha", "log_B", "beta")
    assert SizeLaw().inputs == ("model_size",)
    with pytest.raises(InputError, match="unknown scaling law"):
        get_scaling_law("chinchilla")
    with pytest.raises(InputError, match="missing 'tokens'"):
        check_scale_inputs({"model_size": [1e8]}, ("model_size", "tokens"))
    with pytest.raises(InputError, match="positive"):
        check_scale_inputs({"tokens": [0.0]}, ("tokens",))
