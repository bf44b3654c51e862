"""Model math, the trainer, and the estimator on tiny data with known answers."""

import itertools

import numpy as np
import pytest
import torch

import mfrec
from mfrec import MatrixFactorization, TrainConfig
from mfrec.data import split_ratings
from mfrec.errors import ConfigError, DivergenceError
from mfrec.models import BiasedMF, DotMF

FAST = {"epochs": 60, "patience": 0, "device": "cpu", "batch_size": 128, "learning_rate": 0.02}


def test_notebook_einsum_is_sum_times_sum_not_dot():
    g = torch.Generator().manual_seed(0)
    true = DotMF(3, 3, 4, init_std=1.0, generator=g)
    buggy = DotMF(3, 3, 4, init_std=1.0, notebook_einsum=True)
    buggy.load_state_dict(true.state_dict())
    u, i = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    p, q = true.user_embedding.weight[u], true.item_embedding.weight[i]
    torch.testing.assert_close(true(u, i), (p * q).sum(1))
    torch.testing.assert_close(buggy(u, i), p.sum(1) * q.sum(1))
    torch.testing.assert_close(buggy.score_users(u)[torch.arange(3), i], buggy(u, i))


def test_biased_equation_and_unknown_rows_use_learned_parts():
    model = BiasedMF(2, 2, 2, init_std=1.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.user_bias.weight[:] = torch.tensor([[0.5], [9.0]])
        model.item_bias.weight[:] = torch.tensor([[-0.25], [2.0]])
    model.mark_known(torch.tensor([0]), torch.tensor([0]), torch.tensor([3.0]))
    p, q = model.user_embedding.weight, model.item_embedding.weight
    expected = 3.0 + 0.5 - 0.25 + float(p[0].detach() @ q[0].detach())
    assert float(model(torch.tensor([0]), torch.tensor([0])).detach()) == pytest.approx(expected, rel=1e-6)
    # user 1 and item 1 never trained: their bias and factors are ignored
    assert float(model(torch.tensor([1]), torch.tensor([0]))) == pytest.approx(3.0 - 0.25)
    assert float(model(torch.tensor([0]), torch.tensor([1]))) == pytest.approx(3.5)
    assert float(model(torch.tensor([-1]), torch.tensor([-1]))) == pytest.approx(3.0)
    scores = model.score_users(torch.tensor([0, 1]))
    torch.testing.assert_close(scores[0, 0], model(torch.tensor([0]), torch.tensor([0]))[0])
    torch.testing.assert_close(scores[1, 1], torch.tensor(3.0))


@pytest.mark.parametrize("kind", ["dot", "biased"])
def test_fit_recovers_a_low_rank_matrix(lowrank, kind):
    split = split_ratings(lowrank, "random", seed=0)
    # the dot model has no biases: it needs rank 2 + 3 (mean and both biases) factors
    model = MatrixFactorization(
        model=kind, embedding_dim=8, regularization=0.001, init_std=0.1, **{**FAST, "epochs": 150}
    )
    model.fit(split.train, split.val)
    baseline = float(np.std(split.test.ratings))
    assert model.evaluate(split.test)["rmse"] < 0.5 * baseline
    assert model.evaluate(split.train)["rmse"] < 0.1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "sparse_adam", "adagrad"])
def test_every_optimizer_learns(lowrank, optimizer):
    split = split_ratings(lowrank, "random", seed=0)
    lr = {"sgd": 1.0, "adagrad": 0.1}.get(optimizer, 0.02)
    model = MatrixFactorization(optimizer=optimizer, embedding_dim=4, **{**FAST, "learning_rate": lr})
    model.fit(split.train, split.val)
    assert model.history_[-1].train_rmse < 0.75 * model.history_[0].train_rmse


def test_same_seed_same_model_different_seed_different(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    runs = [MatrixFactorization(seed=s, **FAST).fit(split.train, split.val) for s in (1, 1, 2)]
    states = [r.module_.state_dict() for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(states[0]["user_embedding.weight"], states[2]["user_embedding.weight"])


def test_early_stopping_restores_the_best_epoch(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    # tiny regularization and a big step overfit quickly
    model = MatrixFactorization(
        embedding_dim=32,
        regularization=0.0,
        init_std=0.5,
        epochs=200,
        patience=3,
        device="cpu",
        batch_size=32,
        learning_rate=0.05,
    ).fit(split.train, split.val)
    vals = [r.val_rmse for r in model.history_]
    assert len(vals) < 200
    assert model.best_epoch_ == int(np.argmin(vals)) + 1
    assert model.evaluate(split.val)["rmse"] == pytest.approx(min(vals), abs=1e-5)


def test_divergence_is_reported_with_the_epoch(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    model = MatrixFactorization(
        optimizer="sgd", learning_rate=1e6, init_std=1.0, **{k: v for k, v in FAST.items() if k != "learning_rate"}
    )
    with pytest.raises(DivergenceError, match=r"epoch 1 .*smaller learning rate"):
        model.fit(split.train, split.val)


def test_notebook_einsum_option_changes_predictions(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    base = dict(model="dot", epochs=3, patience=0, device="cpu", init_std=1.0)
    a = MatrixFactorization(**base).fit(split.train).evaluate(split.test)["rmse"]
    b = MatrixFactorization(**base, notebook_einsum=True).fit(split.train).evaluate(split.test)["rmse"]
    assert a != pytest.approx(b)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"model": "svd"}, "model must be one of"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
        ({"embedding_dim": 0}, "embedding_dim must be an integer from 1"),
        ({"regularization": float("nan")}, "regularization must be a non-negative number"),
        ({"notebook_einsum": True}, "notebook_einsum: not an option of the 'biased' model"),
        ({"alpha": 2.0}, "alpha: not an option of the 'biased' model"),
        ({"seed": 2**64}, "seed must be an integer from 0 to 2"),
        ({"colour": "red"}, "unknown training option"),
    ],
)
def test_bad_config_values(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig().replace(**changes)


def test_cuda_without_gpu_is_a_clear_error(lowrank, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        MatrixFactorization(device="cuda").fit(lowrank)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("biased", {"optimizer": "adam", "patience": 2}),
        ("dot", {"optimizer": "sgd", "learning_rate": 0.5}),
        ("biased", {"optimizer": "sparse_adam"}),
        ("biased", {"optimizer": "adagrad", "learning_rate": 0.05}),
        ("implicit_als", {"regularization": 1.0}),
        ("bpr", {"patience": 0}),
    ],
)
def test_an_interrupted_fit_resumes_to_the_same_model(lowrank, tmp_path, kind, options):
    split = split_ratings(lowrank, "random", seed=0)
    config = {"model": kind, "epochs": 10, "patience": 0, "device": "cpu", "embedding_dim": 4}
    if "batch_size" in MatrixFactorization(model=kind).config.params.names():
        config["batch_size"] = 128
    config.update(options)
    reference = MatrixFactorization(**config).fit(split.train, split.val)

    def interrupt(record):
        if record.epoch == 4:
            raise KeyboardInterrupt

    path = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):
        MatrixFactorization(**config).fit(split.train, split.val, on_epoch=interrupt, checkpoint=path)
    resumed = MatrixFactorization(**config).fit(split.train, split.val, checkpoint=path)
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key
    assert [r.epoch for r in resumed.history_] == [r.epoch for r in reference.history_]
    assert resumed.best_epoch_ == reference.best_epoch_


def test_compiled_engine_learns_is_deterministic_and_resumes(lowrank, tmp_path):
    pytest.importorskip("numba")
    split = split_ratings(lowrank, "random", seed=0)
    config = {"engine": "compiled", "epochs": 30, "patience": 0, "device": "cpu", "embedding_dim": 4,
              "learning_rate": 0.02, "regularization": 0.01, "threads": 1}  # fmt: skip
    a = MatrixFactorization(**config).fit(split.train, split.val)
    b = MatrixFactorization(**config).fit(split.train, split.val)
    assert a.history_[-1].train_rmse < 0.75 * a.history_[0].train_rmse
    assert a.evaluate(split.test)["rmse"] < 0.8 * float(np.std(split.test.ratings))
    for key, value in a.module_.state_dict().items():
        assert torch.equal(value, b.module_.state_dict()[key]), key

    def interrupt(record):
        if record.epoch == 7:
            raise KeyboardInterrupt

    path = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):
        MatrixFactorization(**config).fit(split.train, split.val, on_epoch=interrupt, checkpoint=path)
    resumed = MatrixFactorization(**config).fit(split.train, split.val, checkpoint=path)
    for key, value in a.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key
    hogwild = MatrixFactorization(**{**config, "threads": 2}).fit(split.train, split.val)  # not bit-reproducible
    assert hogwild.evaluate(split.test)["rmse"] < 0.9 * float(np.std(split.test.ratings))


def test_compiled_engine_refuses_other_models():
    for model in ("bayesian_svdpp", "ease"):
        with pytest.raises(ConfigError, match=f"engine: not an option of the '{model}' model"):
            TrainConfig(model=model, engine="compiled")
    for model in ("biased", "bayesian", "implicit_als", "bpr"):  # a compiled engine runs on the CPU only
        with pytest.raises(ConfigError, match="runs on the CPU; for cuda use --engine torch"):
            TrainConfig(model=model, engine="compiled", device="cuda")
    with pytest.raises(ConfigError, match="true dot product"):
        TrainConfig(model="dot", engine="compiled", notebook_einsum=True)


def test_auto_engine_is_compiled_on_the_cpu_and_torch_on_a_gpu(lowrank):
    # implicit ALS's and Bayesian MF's two engines solve the same problem, so the device picks one:
    # --device cuda alone trains on the GPU, and auto on a CPU is the compiled engine, bit for bit
    for model in ("implicit_als", "bayesian"):
        config = TrainConfig(model=model)
        spec = config.spec
        assert config.engine == "auto"
        assert spec.engine_for(config.params, "cpu") == "compiled"
        assert spec.engine_for(config.params, torch.device("cuda", 1)) == "torch"
        assert spec.trainer_for(config.params, "cuda") is spec.trainers["torch"]
        assert spec.engine_for(config.replace(engine="torch").params, "cpu") == "torch"
        assert "engine auto (torch)" in spec.describe(config.params, "cuda")
        assert "engine auto (compiled)" in spec.describe(config.params, torch.device("cpu"))
        assert TrainConfig(model=model, device="cuda").training_device == "cuda"
        assert TrainConfig(model=model).training_device == "auto"  # CUDA when there is one
        assert TrainConfig(model=model, engine="compiled").training_device == "cpu"
    quick = {"model": "implicit_als", "embedding_dim": 4, "epochs": 3, "patience": 0, "device": "cpu", "threads": 1}
    factors = {engine: MatrixFactorization(**quick, engine=engine).fit(lowrank).module_.state_dict()
               for engine in ("auto", "compiled", "torch")}  # fmt: skip
    for key, value in factors["auto"].items():
        assert torch.equal(value, factors["compiled"][key]), key
    assert any(not torch.equal(value, factors["torch"][key]) for key, value in factors["auto"].items())
    for model in ("biased", "dot", "bpr"):  # engines that are different algorithms: no auto
        with pytest.raises(ConfigError, match="engine must be one of"):
            TrainConfig(model=model, engine="auto")


def test_a_checkpoint_resumes_only_with_the_engine_that_wrote_it(lowrank, tmp_path):
    # engine auto picks by device: a run begun on a GPU (torch) and resumed on a CPU (compiled) is refused by name,
    # not read as a damaged file; the checkpoint is kept
    from mfrec.errors import ModelFileError

    path = tmp_path / "checkpoint.safetensors"
    quick = {"model": "bayesian", "embedding_dim": 4, "epochs": 3, "burn_in": 1, "samples": 2, "patience": 0,
             "device": "cpu", "threads": 1}  # fmt: skip
    MatrixFactorization(**quick, engine="torch").fit(lowrank, checkpoint=path)
    written = path.read_bytes()
    with pytest.raises(ModelFileError, match="trained with the torch engine, and here it would go on with the "
                                             "compiled engine"):  # fmt: skip
        MatrixFactorization(**quick, engine="auto").fit(lowrank, checkpoint=path)
    assert path.read_bytes() == written
    MatrixFactorization(**quick, engine="torch").fit(lowrank, checkpoint=path)  # the same engine resumes


def test_compiled_engine_trains_plain_dot_mf_without_biases(lowrank):
    pytest.importorskip("numba")
    split = split_ratings(lowrank, "random", seed=0)
    options = {"model": "dot", "engine": "compiled", "epochs": 60, "patience": 0, "device": "cpu",
               "learning_rate": 0.03, "regularization": 0.01, "init_std": 0.3, "threads": 1, "embedding_dim": 8}
    model = MatrixFactorization(**options).fit(split.train, split.val)
    again = MatrixFactorization(**options).fit(split.train, split.val)
    assert torch.equal(model.module_.user_embedding.weight, again.module_.user_embedding.weight)  # one thread
    mean_only = float(np.sqrt(np.mean((split.test.ratings - split.train.ratings.mean()) ** 2)))
    assert model.evaluate(split.test)["rmse"] < 0.6 * mean_only  # 0.29 against 0.66
    u, i = torch.tensor([0, 1]), torch.tensor([0, 2])
    m = model.module_
    expected = (m.user_embedding.weight[u] * m.item_embedding.weight[i]).sum(1)
    torch.testing.assert_close(m(u, i), expected)


def test_target_rmse_stops_training_early(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    full = MatrixFactorization(epochs=40, patience=0, device="cpu", learning_rate=0.02).fit(split.train, split.val)
    target = full.history_[10].val_rmse
    early = MatrixFactorization(epochs=40, patience=0, device="cpu", learning_rate=0.02, target_rmse=target)
    early.fit(split.train, split.val)
    assert len(early.history_) <= 11 and early.history_[-1].val_rmse <= target


def test_bayesian_mf_recovers_a_low_rank_matrix_and_averages_its_samples(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    config = {
        "model": "bayesian",
        "embedding_dim": 4,
        "epochs": 40,
        "burn_in": 10,
        "samples": 10,
        "device": "cpu",
        "noise_precision": 25.0,
    }  # noise-free data
    model = MatrixFactorization(**config).fit(split.train, split.val)
    assert model.evaluate(split.test)["rmse"] < 0.5 * float(np.std(split.test.ratings))
    assert model.module_.user_embedding.weight.shape[1] == 4 * 10  # ten samples side by side
    one = MatrixFactorization(**{**config, "samples": 1}).fit(split.train, split.val)
    assert model.evaluate(split.test)["rmse"] < one.evaluate(split.test)["rmse"]  # averaging helps
    again = MatrixFactorization(**config).fit(split.train, split.val)
    assert torch.equal(model.module_.user_embedding.weight, again.module_.user_embedding.weight)


def test_posterior_rank_stores_the_best_low_rank_factorization_of_the_sample_average(lowrank, tmp_path):
    split = split_ratings(lowrank, "random", seed=0)
    base = {"model": "bayesian", "embedding_dim": 4, "epochs": 20, "burn_in": 10, "samples": 5, "device": "cpu"}
    full = MatrixFactorization(**base).fit(split.train, split.val)
    x, y = full.module_.user_embedding.weight, full.module_.item_embedding.weight
    assert x.shape[1] == 20
    exact = x.double() @ y.double().T
    u, sigma, vh = torch.linalg.svd(exact)
    for rank in (3, 8):
        small = MatrixFactorization(**base, posterior_rank=rank).fit(split.train, split.val)
        xs, ys = small.module_.user_embedding.weight, small.module_.item_embedding.weight
        assert xs.shape[1] == ys.shape[1] == rank
        best = (u[:, :rank] * sigma[:rank]) @ vh[:rank]  # Eckart-Young: the best rank-r approximation
        torch.testing.assert_close(xs.double() @ ys.double().T, best, atol=2e-5, rtol=1e-4)
        small.save(tmp_path / f"r{rank}.safetensors")
        again = mfrec.load_model(tmp_path / f"r{rank}.safetensors")
        assert np.array_equal(again.predict_indices(split.test.users, split.test.items),
                              small.predict_indices(split.test.users, split.test.items))  # fmt: skip
    same = MatrixFactorization(**base, posterior_rank=20).fit(split.train, split.val)  # no compression needed
    assert torch.equal(same.module_.user_embedding.weight, x)


def test_explicit_als_recovers_a_low_rank_matrix_and_each_iteration_lowers_the_objective(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    options = {"model": "als", "embedding_dim": 2, "epochs": 12, "patience": 0, "regularization": 0.001,
               "bias_regularization": 0.001, "device": "cpu"}  # fmt: skip
    model = MatrixFactorization(**options).fit(split.train, split.val)
    train = [r.train_rmse for r in model.history_]
    assert all(later <= earlier + 1e-6 for earlier, later in itertools.pairwise(train))
    assert model.evaluate(split.test)["rmse"] < 0.15  # noise-free rank-2 data, 60% observed


def test_samples_folded_while_sampling_stay_close_to_the_best_low_rank_average(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    base = {"model": "bayesian", "embedding_dim": 4, "epochs": 30, "burn_in": 6, "samples": 20, "device": "cpu"}
    full = MatrixFactorization(**base).fit(split.train, split.val)  # 80 columns, kept whole
    exact = full.module_.user_embedding.weight.double() @ full.module_.item_embedding.weight.double().T
    sigma = torch.linalg.svdvals(exact)
    optimal = float(sigma[8:].pow(2).sum().sqrt())  # the error of the best rank-8 approximation
    folded = MatrixFactorization(**base, posterior_rank=8).fit(split.train, split.val)  # folds every 8 samples
    m = folded.module_
    assert m.user_embedding.weight.shape[1] == 8
    approximation = m.user_embedding.weight.double() @ m.item_embedding.weight.double().T
    error = float(torch.linalg.matrix_norm(approximation - exact))
    assert optimal <= error + 1e-6 and error <= 1.5 * optimal + 1e-3, (error, optimal)


@pytest.mark.parametrize("model", ["biased", "dot"])
def test_compiled_validation_rmse_equals_the_models_own_evaluation(lowrank, model):
    pytest.importorskip("numba")
    split = split_ratings(lowrank, "user", seed=0)
    options = {"model": model, "engine": "compiled", "epochs": 4, "patience": 0, "device": "cpu", "threads": 1,
               "learning_rate": 0.02, "rating_divisor": 5.0 if model == "dot" else 1.0}  # fmt: skip
    fitted = MatrixFactorization(**options).fit(split.train, split.val)
    assert fitted.history_[-1].val_rmse == pytest.approx(fitted.evaluate(split.val)["rmse"], abs=1e-5)


@pytest.mark.parametrize("preset", ["default", "fast"])
def test_threads_bound_every_pool_during_a_fit_and_are_restored(lowrank, preset):
    numba = pytest.importorskip("numba")
    from threadpoolctl import threadpool_info

    seen = []

    def record(_):
        blas = {pool["num_threads"] for pool in threadpool_info()}
        seen.append((torch.get_num_threads(), numba.get_num_threads(), blas))

    before = torch.get_num_threads()
    MatrixFactorization.from_preset(preset, epochs=2, threads=1, device="cpu").fit(lowrank, on_epoch=record)
    assert seen and all(t == 1 and n == 1 and b <= {1} for t, n, b in seen), seen
    assert torch.get_num_threads() == before
