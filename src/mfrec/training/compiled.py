"""A compiled CPU engine for biased and plain MF: per-rating SGD in numba, parallel over threads.

Each epoch walks a permutation (drawn from the run's torch generator) and, for
every rating, applies the Funk/Surprise update

.. math::  e = r - (\\mu + b_u + b_i + p_u^\\top q_i),\\quad
           b_u \\mathrel{+}= \\eta (e - \\lambda_b b_u),\\quad b_i \\mathrel{+}= \\eta (e - \\lambda_b b_i),

.. math::  p_u \\mathrel{+}= \\eta (e\\, q_i - \\lambda p_u),\\quad q_i \\mathrel{+}= \\eta (e\\, p_u - \\lambda q_i),

which is SGD on the per-rating loss of :class:`~mfrec.models.BiasedMF` (the factor
2 folded into :math:`\\eta`). For :class:`~mfrec.models.DotMF` the same loop runs
without :math:`\\mu` and the biases. The parameters are the module's own tensors, updated
in place through numpy views. With ``threads > 1`` the permutation is cut into one
slice per thread and the slices run lock-free at once (Hogwild, Niu et al. 2011):
faster, but no longer bit-for-bit reproducible; with one thread two runs with the
same seed are identical. Needs numba (``pip install "mfrec[fast]"``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mfrec.errors import ConfigError
from mfrec.training.trainer import BaseTrainer, EpochRecord, TrainingData, generator_states, load_generator_states

_KERNEL = None


def compiled_module(name: str):
    """``mfrec.training.<name>``, a module of numba kernels, or a :class:`ConfigError` saying numba is missing."""
    import importlib

    try:
        return importlib.import_module(f"mfrec.training.{name}")
    except ImportError:
        raise ConfigError('the compiled engine needs numba: pip install "mfrec[fast]"') from None


def _kernel():
    """Compile (once, cached on disk by numba) and return the epoch kernel."""
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    try:
        import numba
    except ImportError:
        raise ConfigError('the compiled engine needs numba: pip install "mfrec[fast]"') from None

    @numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def epoch(users, items, ratings, order, p, q, bu, bi, mu, lr, reg, reg_bias, n_slices, biased):  # pragma: no cover
        # float32 scalars and row views keep the inner loops in float32 SIMD
        lr, reg, reg_bias, mu = np.float32(lr), np.float32(reg), np.float32(reg_bias), np.float32(mu)
        decay = np.float32(1.0) - lr * reg
        n = order.shape[0]
        k = p.shape[1]
        sse = np.zeros(n_slices)
        size = (n + n_slices - 1) // n_slices
        for s in numba.prange(n_slices):
            start = s * size
            stop = min(n, start + size)
            total = 0.0
            for j in range(start, stop):
                x = order[j]
                u = users[x]
                i = items[x]
                pu = p[u]
                qi = q[i]
                dot = np.float32(0.0)
                for f in range(k):
                    dot += pu[f] * qi[f]
                if biased:
                    e = ratings[x] - (mu + bu[u] + bi[i] + dot)
                    bu[u] += lr * (e - reg_bias * bu[u])
                    bi[i] += lr * (e - reg_bias * bi[i])
                else:
                    e = ratings[x] - dot
                total += e * e
                step = lr * e
                for f in range(k):
                    a = pu[f]
                    b = qi[f]
                    pu[f] = decay * a + step * b  # p + lr (e q - reg p)
                    qi[f] = decay * b + step * a  # q + lr (e p - reg q), with the old p
            sse[s] = total
        return sse.sum()

    @numba.njit(cache=True, nogil=True)
    def shuffle(order, seed):  # pragma: no cover
        """Fisher-Yates in place, driven by a local splitmix64 stream: no global generator is touched."""
        state = np.uint64(seed)
        for j in range(order.shape[0] - 1, 0, -1):
            state += np.uint64(0x9E3779B97F4A7C15)
            z = state
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            k = np.int64(z % np.uint64(j + 1))
            order[j], order[k] = order[k], order[j]

    @numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def squared_error(
        users, items, targets, p, q, bu, bi, mu, known_u, known_i, biased, low, high, divisor
    ):  # pragma: no cover
        """Sum of squared errors in stars of clipped predictions, as the model's forward() predicts."""
        n = users.shape[0]
        k = p.shape[1]
        total = 0.0
        for j in numba.prange(n):
            u = users[j]
            i = items[j]
            ku = known_u[u]
            ki = known_i[i]
            dot = np.float32(0.0)
            if ku and ki:
                for f in range(k):
                    dot += p[u, f] * q[i, f]
            if biased:
                pred = mu + dot
                if ku:
                    pred += bu[u]
                if ki:
                    pred += bi[i]
            else:
                pred = dot if ku and ki else mu
            pred = min(max(pred * divisor, low), high)
            e = pred - targets[j] * divisor
            total += e * e
        return total

    _KERNEL = (epoch, shuffle, squared_error)
    return _KERNEL


class CompiledTrainer(BaseTrainer):
    """Per-rating SGD on a :class:`~mfrec.models.BiasedMF` or :class:`~mfrec.models.DotMF`, in place, on the CPU.

    Validation RMSE is computed by a compiled kernel too: the torch forward pass cost more than the epoch.
    """

    def __init__(self, module, config, data: TrainingData, generator: torch.Generator, options=None) -> None:
        if module.user_embedding.weight.device.type != "cpu":
            raise ConfigError("the compiled engine runs on the CPU; use --device cpu or --engine torch")
        self.module, self.config, self.data, self.generator = module, config, data, generator
        self.epochs = config.epochs
        self.hint = f"try a smaller learning rate than {config.learning_rate:g}"
        self.kernel, self.shuffle, self.squared_error = _kernel()
        users, items, ratings = data.train
        self.users = users.numpy().astype(np.int32)
        self.items = items.numpy().astype(np.int32)
        self.ratings = ratings.numpy().astype(np.float32)
        # numpy views of the module's tensors: the kernel's updates land in the module
        self.p = module.user_embedding.weight.detach().numpy()
        self.q = module.item_embedding.weight.detach().numpy()
        self.biased = hasattr(module, "user_bias")
        if self.biased:
            self.bu = module.user_bias.weight.detach().numpy()[:, 0]
            self.bi = module.item_bias.weight.detach().numpy()[:, 0]
        else:  # DotMF: the kernel leaves these alone
            self.bu, self.bi = np.zeros(1, np.float32), np.zeros(1, np.float32)
        self.mu = float(module.global_mean)
        self.slices = max(1, options.threads if options else 1)  # Hogwild: one slice of the permutation per thread
        self.order = np.arange(len(self.ratings), dtype=np.int32)
        if data.has_val:
            self.val = tuple(t.numpy().astype(np.int32 if k < 2 else np.float32) for k, t in enumerate(data.val))
        self.known_u, self.known_i = module.user_known.numpy(), module.item_known.numpy()

    def epoch(self, epoch: int) -> EpochRecord:
        config, n = self.config, len(self.ratings)
        # each epoch's order depends only on the run's torch generator (restored by a checkpoint)
        self.order[:] = np.arange(n, dtype=np.int32)
        self.shuffle(self.order, int(torch.randint(2**31 - 1, (1,), generator=self.generator)))
        sse = self.kernel(self.users, self.items, self.ratings, self.order, self.p, self.q, self.bu, self.bi, self.mu,
                          config.learning_rate, config.regularization, getattr(config, "bias_regularization", 0.0),
                          self.slices, self.biased)  # fmt: skip
        divisor = self.data.divisor
        val_rmse = None
        if self.data.has_val:
            low, high = self.data.scale
            val_sse = self.squared_error(*self.val, self.p, self.q, self.bu, self.bi, self.mu, self.known_u,
                                         self.known_i, self.biased, float(low), float(high),
                                         float(divisor))  # fmt: skip
            val_rmse = math.sqrt(val_sse / len(self.val[2]))
        return EpochRecord(epoch, math.sqrt(sse / n) * divisor, val_rmse)

    def state(self):
        return generator_states({"shuffle": self.generator}), {}

    def load_state(self, tensors, meta) -> None:
        load_generator_states({"shuffle": self.generator}, tensors)
