"""Fuzzing the HTTP surface: schemathesis cases from the served OpenAPI schema find no 5xx.

The cases come from schemathesis' Hypothesis strategies (one per operation) and are
driven here directly, since its pytest plugin does not yet support this pytest.
"""

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    from mfrec import MatrixFactorization
    from mfrec.data.profiles import ProfileStore
    from mfrec.serve import create_app
    from tests.conftest import low_rank_ratings

    model = MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=4).fit(low_rank_ratings())
    store = ProfileStore(f"sqlite:///{tmp_path_factory.mktemp('db') / 'profiles.sqlite'}")  # profiles fuzzed too
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(model, profiles=store))


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed_without_server_errors(schema):
    ops = operations(schema)
    assert len(ops) >= 8
    failures = []
    statuses: dict[int, int] = {}
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in [(op, mode) for op in ops for mode in modes]:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r}: {response.text}")
            elif response.status_code >= 400:
                assert "message" in response.json(), response.text

        try:
            run()
        except Unsatisfiable:  # nothing can be malformed in an operation without parameters (/health)
            assert mode is schemathesis.GenerationMode.NEGATIVE
    assert not failures, failures[:3]
    assert sum(statuses.values()) >= 10 * len(ops)
    assert 200 in statuses and any(400 <= code < 500 for code in statuses), statuses
