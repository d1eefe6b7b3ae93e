"""What one trial asks of a cluster: CPUs and GPUs (fractions let small trials share a GPU).

A space's optional ``[resources]`` section sets them; the Ray driver gives each trial exactly
this much (``cpus = 1, gpus = 0.25`` runs four trials per GPU). The local driver runs one trial
at a time and ignores them. They are not part of the space's fingerprint: changing them never
stops a study from resuming.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrialResources"]


@dataclass(frozen=True)
class TrialResources:
    """CPUs and GPUs reserved for one trial.

    ``cpus`` > 0 (fractions allowed). ``gpus`` >= 0: a fraction below 1 shares one GPU between
    trials, a value of 1 or more must be a whole number (Ray cannot split a trial over part of
    a second GPU).
    """

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpus > 0:
            raise ValueError(f"[resources] cpus must be > 0, got {self.cpus!r}; e.g. cpus = 1")
        if not self.gpus >= 0:
            raise ValueError(f"[resources] gpus must be >= 0, got {self.gpus!r}; e.g. gpus = 0.25")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(
                f"[resources] gpus above 1 must be a whole number, got {self.gpus!r}; use a "
                f"fraction below 1 to share a GPU (gpus = 0.5) or whole GPUs (gpus = 2)"
            )

    def as_ray(self) -> dict[str, float]:
        """The resource request Ray Tune takes (``tune.with_resources``)."""
        return {"cpu": self.cpus, "gpu": self.gpus}
