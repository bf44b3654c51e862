"""Bayesian matrix factorization (Salakhutdinov and Mnih 2008), sampled by Gibbs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfrec.models.base import AUTO_ENGINES, ModelConfig, RatingConfig, RatingModel, embedding
from mfrec.models.normal_equations import RowIndex, row_systems
from mfrec.options import option


@dataclass(frozen=True)
class BayesianConfig(ModelConfig):
    """Hyperparameters of :class:`BayesianMF` (the ``bayesian`` preset's values)."""

    embedding_dim: int = RatingConfig.default("embedding_dim", 32)
    epochs: int = RatingConfig.default("epochs", 400, help="Gibbs sweeps in all", probe=16)
    init_std: float = RatingConfig.default("init_std", 0.1)
    rating_divisor: float = RatingConfig.default("rating_divisor", 1.0)
    burn_in: int = option(40, "Gibbs sweeps discarded before samples are kept", check="count", probe=1)
    samples: int = option(180, "Gibbs sweeps kept and averaged, spread evenly after the burn-in",
                          check="positive_int", probe=2)  # fmt: skip
    noise_precision: float = option(2.0, "inverse variance of the ratings around the model", check="positive",
                                    probe=20.0)  # fmt: skip
    posterior_rank: int = option(256, "store the sample average at this rank (0 = every sample side by side)",
                                 check="count", probe=2)  # fmt: skip
    engine: str = option("auto", "auto (compiled on the CPU, torch on a GPU), compiled (numba, CPU) or torch "
                         "(batched, CPU or GPU) Gibbs conditionals", choices=AUTO_ENGINES, probe="torch")  # fmt: skip

    def validate(self) -> None:
        if self.epochs - self.burn_in < self.samples:
            from mfrec.errors import ConfigError

            raise ConfigError(
                f"bayesian needs epochs - burn_in >= samples ({self.epochs} - {self.burn_in} < {self.samples})"
            )


class BayesianMF(RatingModel):
    r"""BPMF with biases, averaged over posterior samples.

    Model: :math:`r_{ui} \sim \mathcal N(\mu + x_u^\top y_i, \alpha^{-1})` with
    :math:`\mu` the mean training rating, :math:`x_u \sim \mathcal N(\mu_X, \Lambda_X^{-1})`
    and a Gaussian-Wishart hyperprior on :math:`(\mu_X, \Lambda_X)` (likewise for
    items). The hyperpriors' means absorb what biases would: nothing is tuned by hand
    beyond the dimension, the noise precision :math:`\alpha` and the number of sweeps.
    Gibbs sampling alternates the hyperparameters and every user's (then item's)
    vector from its Gaussian conditional, solved in one batched Cholesky.

    The prediction is the posterior mean over the kept samples
    :math:`s = 1..S`: :math:`\hat r_{ui} = \mu + \frac1S\sum_s x_u^{(s)\top} y_i^{(s)}`.
    The samples are stored side by side, each scaled by :math:`S^{-1/2}`, so the
    embeddings have ``S * embedding_dim`` columns and one dot product gives the
    average: scoring, top-N and serving work unchanged. With ``posterior_rank``
    :math:`r < S k`, :meth:`compress` then replaces them by the best rank-:math:`r`
    factorization of the averaged score matrix :math:`\bar X \bar Y^\top` (truncated SVD,
    Eckart-Young), so many samples cost no more to store or serve than :math:`r` factors.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        *,
        samples: int = 1,
        posterior_rank: int = 0,
        generator=None,
        **_,
    ) -> None:
        super().__init__(n_users, n_items)
        self.kept_width = samples * embedding_dim
        self.posterior_rank = posterior_rank
        width = self.stored_width
        self.user_embedding = embedding(n_users, width, 0.0, None, False)
        self.item_embedding = embedding(n_items, width, 0.0, None, False)
        self.requires_grad_(False)

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> BayesianMF:
        return cls(n_users, n_items, config.embedding_dim, samples=config.samples,
                   posterior_rank=config.posterior_rank)  # fmt: skip

    @property
    def stored_width(self) -> int:
        """Columns of the stored factors: ``posterior_rank`` when it compresses, else every sample's."""
        rank = self.posterior_rank
        return rank if 0 < rank < self.kept_width else self.kept_width

    def sample_tables(self, embedding_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero tables for the sampler to fill: every sample's columns, or, when compressing,
        ``posterior_rank`` columns plus room for 8 more samples (see :meth:`fold_samples`)."""
        width = self.kept_width
        if self.stored_width < width:
            width = min(width, self.stored_width + 8 * embedding_dim)
        device = self.user_embedding.weight.device
        return (torch.zeros(self.n_users, width, device=device),
                torch.zeros(self.n_items, width, device=device))  # fmt: skip

    def fold_samples(self, x: torch.Tensor, y: torch.Tensor) -> int:
        """Compress full sample tables in place into their first ``stored_width`` columns.

        Returns the first free column. Memory stays at ``posterior_rank + 8k`` columns
        however many samples are kept; each fold is a truncated SVD of the running sum,
        so the result is the best rank-r factorization up to the truncations made on the way.
        """
        width = self.stored_width
        small_x, small_y = low_rank(x, y, width)
        x.zero_()
        y.zero_()
        x[:, : small_x.shape[1]] = small_x
        y[:, : small_y.shape[1]] = small_y
        return width

    @torch.no_grad()
    def compress(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Store the best rank-``stored_width`` factorization of ``x @ y.T`` as the embeddings."""
        width = self.stored_width
        if width < x.shape[1]:
            x, y = low_rank(x, y, width)
            if x.shape[1] < width:  # fewer users or items than the rank: pad with zero columns
                x = torch.nn.functional.pad(x, (0, width - x.shape[1]))
                y = torch.nn.functional.pad(y, (0, width - y.shape[1]))
        self.user_embedding.weight.copy_(x)
        self.item_embedding.weight.copy_(y)

    def zero_unknown_rows(self) -> None:
        """No-op: a row without ratings holds its prior mean, which is what it should predict with."""

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        r""":math:`\mu + x_u^\top y_i`; an id the model never saw (index ``-1``) takes the mean factor of
        its side's trained rows, so a new user still gets each item's effect
        (:math:`\mu + \bar x^\top y_i`) and a new item each user's (:math:`\mu + x_u^\top \bar y`)."""
        x = self._rows(self.user_embedding.weight, self.user_known, users)
        y = self._rows(self.item_embedding.weight, self.item_known, items)
        return self.global_mean + (x * y).sum(-1)

    @staticmethod
    def _rows(table: torch.Tensor, known: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = table[index.clamp(min=0)]
        missing = index < 0
        if bool(missing.any()):
            mean = table[known].mean(0) if bool(known.any()) else torch.zeros_like(table[0])
            rows = torch.where(missing[:, None], mean, rows)
        return rows

    def score(self, bias: torch.Tensor, factors: torch.Tensor, known_user: torch.Tensor) -> torch.Tensor:
        return self.global_mean + factors @ self.item_embedding.weight.T

    def item_offsets(self) -> torch.Tensor:
        return self.global_mean.expand(self.n_items)

    def fold_in_ridge(self, config, n: int, k: int) -> torch.Tensor:
        """A standard normal prior on the new user's factors against noise variance 1/alpha (MAP)."""
        return torch.full((k,), 1.0 / config.noise_precision, dtype=torch.float64)


def low_rank(x: torch.Tensor, y: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Factors of the best rank-``rank`` approximation of ``x @ y.T`` (Eckart-Young), without forming it.

    By thin QR of both sides and an SVD of the small core:
    :math:`X Y^\top = Q_x (R_x R_y^\top) Q_y^\top`, :math:`R_x R_y^\top = U \Sigma V^\top`;
    the factors are :math:`Q_x U_r \Sigma_r^{1/2}` and :math:`Q_y V_r \Sigma_r^{1/2}`, in ``x``'s dtype
    (at most ``rank`` columns; fewer when a side has fewer rows).
    """
    qx, rx = torch.linalg.qr(x.double())
    qy, ry = torch.linalg.qr(y.double())
    u, sigma, vh = torch.linalg.svd(rx @ ry.T, full_matrices=False)
    root = sigma[:rank].sqrt()
    return (qx @ (u[:, :rank] * root)).to(x.dtype), (qy @ (vh[:rank].T * root)).to(y.dtype)


def wishart(rng: np.random.Generator, df: float, scale: np.ndarray) -> np.ndarray:
    """One Wishart(df, scale) draw by the Bartlett decomposition, from ``rng``."""
    k = scale.shape[0]
    lower = np.linalg.cholesky(scale)
    a = np.zeros((k, k))
    for i in range(k):
        a[i, i] = np.sqrt(rng.chisquare(df - i))
        a[i, :i] = rng.standard_normal(i)
    la = lower @ a
    return la @ la.T


def sample_hyperparameters(rng: np.random.Generator, x: np.ndarray, beta0: float = 2.0) -> tuple:
    """Draw :math:`(\\mu, \\Lambda)` from the Gaussian-Wishart posterior given the rows of ``x``.

    Prior: :math:`\\mu_0 = 0`, :math:`\\beta_0`, :math:`W_0 = I`, :math:`\\nu_0 = k`.
    """
    n, k = x.shape
    mean = x.mean(0)
    spread = np.cov(x.T, bias=True) if n > 1 else np.zeros((k, k))
    beta, nu = beta0 + n, k + n
    center = n * mean / beta
    w_inv = np.eye(k) + n * spread + (beta0 * n / beta) * np.outer(mean, mean)
    w = np.linalg.inv(w_inv)
    precision = wishart(rng, nu, (w + w.T) / 2)
    cov = np.linalg.inv(beta * precision)
    return rng.multivariate_normal(center, (cov + cov.T) / 2), precision


def sample_side(
    generator: torch.Generator,
    index: RowIndex,
    other: torch.Tensor,
    mean: np.ndarray,
    precision: np.ndarray,
    noise_precision: float,
) -> torch.Tensor:
    r"""Every row's vector from its conditional Gaussian, by batched Gram products and Cholesky.

    :math:`\mathcal N(\Lambda_*^{-1} b, \Lambda_*^{-1})` with
    :math:`\Lambda_* = \Lambda + \alpha \sum_j y_j y_j^\top` and
    :math:`b = \Lambda\mu + \alpha \sum_j r_j y_j` over the row's ratings :math:`j`
    (pieces from :func:`row_systems`; solves in float64). A row without ratings is
    drawn from the prior. The standard normal draws come from ``generator`` for all
    rows at once, so the result does not depend on the slicing.
    """
    n_rows, k = index.n_rows, other.shape[1]
    device = other.device
    lam = torch.as_tensor(precision, dtype=torch.float64, device=device)
    lam_mean = lam @ torch.as_tensor(mean, dtype=torch.float64, device=device)
    z = torch.randn(n_rows, k, generator=generator, dtype=torch.float64).to(device)
    out = torch.empty(n_rows, k, dtype=torch.float64, device=device)
    for chunk, gram, rhs in row_systems(index, other):
        chol = torch.linalg.cholesky(lam + noise_precision * gram)
        center = torch.cholesky_solve((lam_mean + noise_precision * rhs)[:, :, None], chol)[:, :, 0]
        noise = torch.linalg.solve_triangular(chol.transpose(1, 2), z[chunk, :, None], upper=True)[:, :, 0]
        out[chunk] = center + noise
    return out
