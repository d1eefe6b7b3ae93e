"""The samplers a space may name (``[study] sampler``), each built from its name and a seed.

:data:`FACTORIES` maps each name to a factory taking the seed; it holds every setting of the
sampler, so a name and a seed rebuild it. That is what a saved Ray searcher keeps instead of
a pickled sampler (see :mod:`snt_search.ray.searcher`): Optuna's samplers hold locks and
caches, and all of them read their history (NSGA-II's generations, TPE's and GP's past
trials) from the study's stored trials, so a rebuilt sampler continues from the study.

:func:`make_sampler` seeds the sampler from the space's seed and a ``stream``; a ``restart``
derives a further stream from those two that no plain stream equals (a restored experiment
uses it, so it does not repeat the draws of the run it restores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import optuna

if TYPE_CHECKING:
    from .space import Space

__all__ = ["FACTORIES", "make_sampler", "sampler_seed"]

FACTORIES: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=8),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed, scramble=True),  # Sobol, even cover
}


def sampler_seed(seed: int, stream: int = 0, restart: int | None = None) -> int:
    """The sampler seed of ``stream`` under the space's ``seed``, or of its ``restart``.

    Distinct ``stream`` numbers give independent seeds; ``restart=n`` gives one more seed per
    ``(stream, n)``, distinct from every plain stream's (a spawned ``SeedSequence`` child).
    """
    spawn_key = () if restart is None else (restart,)
    sequence = np.random.SeedSequence([seed, stream], spawn_key=spawn_key)
    return int(sequence.generate_state(1)[0])


def make_sampler(
    space: Space, stream: int = 0, *, restart: int | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler the space names, seeded from the space's seed and ``stream``.

    Workers (and resumed runs) pass distinct ``stream`` numbers so that they do not draw the
    same parameters; ``stream=0`` gives the same sequence every time. ``restart`` derives a
    new stream from ``stream`` (see :func:`sampler_seed`).
    """
    factory = FACTORIES.get(space.sampler)
    if factory is None:
        raise ValueError(
            f"{space.path}: [study] sampler must be one of {', '.join(FACTORIES)}; got "
            f"{space.sampler!r}. Name one of them."
        )
    return factory(sampler_seed(space.seed, stream, restart))
