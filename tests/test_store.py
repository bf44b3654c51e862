"""Model files: round trip, no pickle, tamper/truncation/version checks, byte-identical for one seed."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec import MatrixFactorization, load_model
from mfrec.data import Ratings, split_ratings
from mfrec.errors import ModelFileError

SAFE_DTYPES = {"F16", "BF16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL"}


@pytest.fixture
def fitted(lowrank):
    split = split_ratings(lowrank, "random", seed=0)
    return MatrixFactorization(epochs=5, patience=0, device="cpu").fit(split.train, split.val), split


def parse_safetensors(path):
    """Parse the file by hand: 8-byte length, a JSON header, then raw tensor bytes and nothing else."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    return raw, length, header, ends


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip_gives_identical_predictions(fitted, tmp_path, mmap):
    model, split = fitted
    path = model.save(tmp_path / "m.safetensors")
    loaded = load_model(path, mmap=mmap)
    test = split.test
    assert np.array_equal(model.predict_indices(test.users, test.items), loaded.predict_indices(test.users, test.items))
    assert model.recommend(100, 5).to_frame().equals(loaded.recommend(100, 5).to_frame())
    assert [r.val_rmse for r in loaded.history_] == [r.val_rmse for r in model.history_]
    assert loaded.best_epoch_ == model.best_epoch_


def test_file_is_tensors_plus_json_without_pickle(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    raw, length, header, ends = parse_safetensors(path)
    assert len(raw) == 8 + length + max(ends)  # nothing hidden after the tensors
    dtypes = {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}
    assert dtypes <= SAFE_DTYPES
    meta = json.loads(header["__metadata__"]["mfrec"])
    assert meta["kind"] == "biased" and meta["format_version"] == 2


def test_string_ids_and_titles_survive(tmp_path):
    titles = __import__("pandas").Series({"a": "Alpha", "b": "Beta", "c": None})
    data = Ratings.from_arrays(
        np.array(["u1", "u1", "u2", "u2", "u3"]),
        np.array(["a", "b", "a", "c", "b"]),
        np.array([5.0, 1.0, 4.0, 2.0, 1.5]),
        titles=titles,
    )
    model = MatrixFactorization(epochs=3, patience=0, device="cpu", embedding_dim=2).fit(data)
    loaded = load_model(model.save(tmp_path / "m.safetensors"))
    assert loaded.title("a") == "Alpha" and loaded.title("c") is None
    assert loaded.predict(["u1"], ["c"])[0] == pytest.approx(model.predict(["u1"], ["c"])[0])


@pytest.mark.parametrize("mmap", [False, True])
def test_tampered_truncated_and_foreign_files_are_refused(fitted, tmp_path, mmap):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    raw = bytearray(path.read_bytes())
    tampered = tmp_path / "tampered.safetensors"
    raw[-3] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tampered, mmap=mmap)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: len(raw) // 2])
    with pytest.raises(ModelFileError, match=r"truncated|not a readable"):
        load_model(truncated, mmap=mmap)
    pickled = tmp_path / "pickle.safetensors"
    pickled.write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ModelFileError):
        load_model(pickled, mmap=mmap)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, plain)
    with pytest.raises(ModelFileError, match="not an mfrec model"):
        load_model(plain, mmap=mmap)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors", mmap=mmap)


def test_mapped_model_shares_the_file_pages(fitted, tmp_path):
    """With mmap the module's parameters are views of the file's map, not private copies."""
    model, split = fitted
    path = model.save(tmp_path / "m.safetensors")
    loaded = load_model(path, mmap=True)
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps (Linux)")
    regions = []
    for line in maps.read_text().splitlines():
        span, *rest = line.split()
        if rest and rest[-1] == str(path.resolve()):
            low, high = (int(v, 16) for v in span.split("-"))
            regions.append((low, high))
    assert regions, "the model file is not mapped"
    for name, tensor in loaded.module_.state_dict().items():
        if tensor.numel():
            assert any(low <= tensor.data_ptr() < high for low, high in regions), name
    test = split.test
    assert np.array_equal(loaded.predict_indices(test.users, test.items), model.predict_indices(test.users, test.items))


def test_newer_format_is_refused_with_advice(fitted, tmp_path, monkeypatch):
    from mfrec import store

    model, _ = fitted
    monkeypatch.setattr(store, "FORMAT_VERSION", 99)
    path = model.save(tmp_path / "m.safetensors")
    monkeypatch.setattr(store, "FORMAT_VERSION", 1)
    with pytest.raises(ModelFileError, match=r"format 99.*upgrade mfrec"):
        load_model(path)


def test_same_seed_gives_byte_identical_model_files(lowrank, tmp_path):
    split = split_ratings(lowrank, "random", seed=0)
    paths = []
    for name in ("a", "b"):
        model = MatrixFactorization(epochs=4, patience=0, device="cpu", seed=5).fit(split.train, split.val)
        paths.append(
            model.save(tmp_path / f"{name}.safetensors", metrics={"rmse": 1.0, "fit_seconds": float(ord(name))})
        )
    assert paths[0].read_bytes() == paths[1].read_bytes()
    other = MatrixFactorization(epochs=4, patience=0, device="cpu", seed=6).fit(split.train, split.val)
    assert other.save(tmp_path / "c.safetensors").read_bytes() != paths[0].read_bytes()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from tests.conftest import low_rank_ratings

    model = MatrixFactorization(epochs=2, patience=0, device="cpu", embedding_dim=2).fit(low_rank_ratings(20, 10))
    return model.save(tmp_path_factory.mktemp("flip") / "m.safetensors").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_single_bit_flip_anywhere_in_a_model_file_is_refused(saved_model, tmp_path, data):
    position = data.draw(st.integers(0, len(saved_model) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(saved_model)
    damaged[position] ^= 1 << bit
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError):
        load_model(path)


def test_a_changed_header_value_is_refused(saved_model, tmp_path):
    text = saved_model.replace(b'\\"scale\\": [0.5, 5.0]', b'\\"scale\\": [0.5, 1.0]')
    assert text != saved_model
    (tmp_path / "m.safetensors").write_bytes(text)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tmp_path / "m.safetensors")


# ------------------------------------------------- files whose digest is right but whose content is not
def _rewrite(source: bytes, path: Path, tensors_fn=None, meta_fn=None) -> Path:
    """A copy of a model file changed by other code that recomputed the digest, as a hostile writer would."""
    from safetensors.torch import load, save_file

    from mfrec._io import content_digest

    tensors = load(source)
    meta = json.loads(json.loads(source[8 : 8 + struct.unpack("<Q", source[:8])[0]])["__metadata__"]["mfrec"])
    if tensors_fn:
        tensors_fn(tensors)
    if meta_fn:
        meta_fn(meta)
    meta.pop("sha256")
    meta["sha256"] = content_digest(tensors, meta)
    save_file(tensors, str(path), metadata={"mfrec": json.dumps(meta)})
    return path


CRAFTED = {
    "a NaN factor": ({"module.user_embedding.weight": lambda t: t["module.user_embedding.weight"].index_fill(0, torch.tensor([0]), float("nan"))}, None, "NaN or inf"),  # noqa: E501
    "an infinite bias": ({"module.item_bias.weight": lambda t: torch.full_like(t["module.item_bias.weight"], float("inf"))}, None, "NaN or inf"),  # noqa: E501
    "float64 factors": ({"module.item_embedding.weight": lambda t: t["module.item_embedding.weight"].double()}, None, "float64, not torch.float32"),  # noqa: E501
    "a known mask of bytes": ({"module.user_known": lambda t: t["module.user_known"].to(torch.uint8)}, None, "uint8, not torch.bool"),  # noqa: E501
    "too few seen offsets": ({"seen_indptr": lambda t: t["seen_indptr"][:-3].clone()}, None, "offsets for"),
    "falling seen offsets": ({"seen_indptr": lambda t: t["seen_indptr"].flip(0).clone()}, None, "offsets must rise"),
    "float seen offsets": ({"seen_indptr": lambda t: t["seen_indptr"].float()}, None, "integer offsets"),
    "a seen item past the catalog": ({"seen_items": lambda t: t["seen_items"].index_fill(0, torch.tensor([0]), 10**6)}, None, "item index outside"),  # noqa: E501
    "a negative seen item": ({"seen_items": lambda t: t["seen_items"].index_fill(0, torch.tensor([0]), -1)}, None, "item index outside"),  # noqa: E501
    "seen items as a matrix": ({"seen_items": lambda t: t["seen_items"][: len(t["seen_items"]) // 2 * 2].reshape(2, -1)}, None, "two equal vectors"),  # noqa: E501
    "a NaN seen rating": ({"seen_ratings": lambda t: t["seen_ratings"].index_fill(0, torch.tensor([0]), float("nan"))}, None, "NaN or inf"),  # noqa: E501
    "float user ids": ({"user_ids": lambda t: t["user_ids"].double()}, None, "integers or strings, not float64"),
    "repeated item ids": ({"item_ids": lambda t: t["item_ids"].index_fill(0, torch.tensor([1]), int(t["item_ids"][0]))}, None, "not unique"),  # noqa: E501
    "a reversed scale": (None, {"scale": [5.0, 0.5]}, "low < high"),
    "titles for three items": (None, {"titles": ["a", "b", "c"]}, "3 entries"),
    "numbers as genres": (None, {"genres": lambda m: [7] * m["n_items"]}, "text"),
    "an unknown data kind": (None, {"data_kind": "ratings?"}, "data_kind"),
    "a numeric dataset name": (None, {"dataset": 5}, "dataset name"),
    "metrics as a list": (None, {"metrics": [1]}, "metrics"),
    "a negative best epoch": (None, {"best_epoch": -1}, "best_epoch"),
}


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_file_with_a_recomputed_digest_is_still_checked_whole(saved_model, tmp_path, case, mmap):
    """The digest proves the file is the one written, not that mfrec wrote it: a file made by other code,
    its digest recomputed, is refused at load with the broken invariant named, never failing later."""
    tensor_changes, meta_changes, named = CRAFTED[case]

    def tensors_fn(tensors):
        for name, change in (tensor_changes or {}).items():
            tensors[name] = change(tensors)

    def meta_fn(meta):
        for name, value in (meta_changes or {}).items():
            meta[name] = value(meta) if callable(value) else value

    path = _rewrite(saved_model, tmp_path / "crafted.safetensors", tensors_fn, meta_fn)
    with pytest.raises(ModelFileError, match="inconsistent model file") as error:
        load_model(path, mmap=mmap)
    assert named in str(error.value)


def test_the_crafting_itself_keeps_a_good_file_good(saved_model, tmp_path):
    """The check of the cases above: rewriting with no change gives a file that loads and recommends."""
    model = load_model(_rewrite(saved_model, tmp_path / "same.safetensors"))
    assert model.recommend(model.user_map_.ids[0], n=3).items.shape == (1, 3)
