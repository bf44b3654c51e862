"""The contract, generated for every registered model; and a test that the contract catches a broken scorer."""

import numpy as np
import pytest
import torch

from mfrec.errors import ConfigError
from mfrec.models import registry
from tests import contract

MODELS = list(registry.SPECS)
CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("check_")]


@pytest.fixture(scope="module", params=MODELS)
def case(request) -> contract.Case:
    return contract.make_case(request.param)  # fitted once per model, shared by every check


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(case, check, tmp_path):
    if check is contract.check_save_load_round_trip:
        check(case, tmp_path)
    else:
        check(case)


def test_same_seed_same_parameters(case):
    again = contract.quick(case.name).fit(case.split.train, case.split.val)
    for key, value in case.model.module_.state_dict().items():
        assert torch.equal(value, again.module_.state_dict()[key]), key


def test_rating_only_methods_refuse_ranking_models(case):
    if case.model.predicts_ratings:
        assert case.model.evaluate(case.split.test)["rmse"] > 0
    else:
        with pytest.raises(ConfigError, match="needs a rating model"):
            case.model.evaluate(case.split.test)


MUTATIONS = {
    "zeros": lambda scores: torch.zeros_like(scores),
    "constant": lambda scores: torch.full_like(scores, 3.0),
    "shuffled": lambda scores: scores[:, torch.randperm(scores.shape[1], generator=torch.Generator().manual_seed(0))],
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_contract_fails_a_broken_scorer(case, mutation):
    """A test of the tests: with ``score`` patched, some scoring check must fail, for every model."""
    failures = []
    for model in (case.model, case.oracle):
        real = model.module_.score
        model.module_.score = lambda *rep, real=real: MUTATIONS[mutation](real(*rep))
    try:
        for check in contract.scoring_checks():
            try:
                check(case)
            except AssertionError as exc:
                failures.append(f"{check.__name__}: {exc}")
    finally:
        for model in (case.model, case.oracle):
            del model.module_.score
    assert failures, f"{case.name}: every scoring check passed with {mutation} scores"
    contract.check_oracle_top1_is_in_the_users_block(case)  # the real scorer passes again


def test_every_registered_model_is_covered():
    assert set(MODELS) == set(registry.SPECS) and len(MODELS) >= 7
    assert np.all([registry.get(name).quick for name in MODELS])
