"""Every hyperparameter of every registered model changes what it learns (driven by each Config's fields)."""

from dataclasses import fields

import numpy as np
import pytest
import torch

from mfrec.data import split_ratings
from mfrec.errors import ConfigError
from mfrec.models import registry
from tests.conftest import low_rank_ratings
from tests.contract import quick

FIELDS = [(name, f) for name, spec in registry.SPECS.items() for f in fields(spec.config)]


def probe_value(current, f):
    """The field's probe value, or another legal value when the probe is the current one."""
    value = f.metadata["probe"]
    if value is None:
        pytest.fail(f"{f.name} has no probe value: give it one in its option()")
    if value == current:
        value = not current if isinstance(current, bool) else current * 2 if current else 1
    return value


@pytest.fixture(scope="module")
def split():
    return split_ratings(low_rank_ratings(), "random", seed=0)


@pytest.fixture(scope="module")
def reference(split):
    return {}


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[f"{n}-{f.name}" for n, f in FIELDS])
def test_every_hyperparameter_matters(split, reference, name, field):
    if name not in reference:
        reference[name] = quick(name).fit(split.train, split.val)
    base = reference[name]
    other = {}
    if field.name not in base.config.params.relevant():  # an option of another engine: probe it there
        engines = registry.get(name).engines
        other = {"engine": next(e for e in engines if field.name in base.config.params.replace(engine=e).relevant())}
        base = quick(name, **other).fit(split.train, split.val)
    if field.metadata["probe"] == "limit":  # a resource limit: too small a value is refused before any work
        with pytest.raises(ConfigError, match=field.name):
            quick(name, **{field.name: 1}).fit(split.train, split.val)
        return
    value = probe_value(getattr(base.config.params, field.name), field)
    if field.name == "engine":
        pytest.importorskip("numba")
    changed = quick(name, **{**other, field.name: value}).fit(split.train, split.val)
    users = base.trained_users()[:20]
    a = base.module_.score_users(torch.as_tensor(base.user_indices(users))).detach()
    b = changed.module_.score_users(torch.as_tensor(changed.user_indices(users))).detach()
    if field.metadata["same"]:  # another implementation of the same computation
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)
        return
    assert not np.allclose(a.numpy(), b.numpy(), atol=1e-6), f"{name}: {field.name}={value!r} changed nothing"
