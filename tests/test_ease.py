"""EASE: the closed form against numpy, and its memory limit (the contract suite covers the rest)."""

import numpy as np
import pytest

from mfrec.errors import ConfigError
from tests.contract import block_ratings, quick


def test_weights_are_the_closed_form_and_fold_in_is_x_b():
    data = block_ratings(with_ratings=False)
    model = quick("ease", regularization=3.0).fit(data)
    x = np.zeros((data.n_users, data.n_items))
    x[data.users, data.items] = 1.0
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(data.n_items))
    b = np.eye(data.n_items) - p / np.diag(p)
    np.testing.assert_allclose(model.module_.weights.numpy(), b, atol=1e-5)
    mine = {int(i): 1.0 for i in data.item_map.raw(data.items[data.users == 0])}
    np.testing.assert_allclose(model.recommend_for_ratings(mine, n=5).scores, model.recommend(100, n=5).scores)
    with pytest.raises(ConfigError, match=r"dense 32 x 32 item matrix.*max_items is 31"):
        quick("ease", max_items=31).fit(data)
