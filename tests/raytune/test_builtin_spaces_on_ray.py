"""Every built-in space (``studies/*.toml``), by name, through the Ray searcher's suggest ->
save -> restore -> suggest path, with the space's own sampler past its random start-up (NSGA-II's
first generation, TPE's and GP's start-up trials), so a sampler that a library release makes
unsaveable, or unable to continue from the study, fails here by the space's name.

No Ray cluster and no training: trials are told made-up objectives, as Ray would report them.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snt_search.driver import StudyOptions
from snt_search.ray.searcher import StudySearcher
from snt_search.ray.trainable import RESULT_KEY
from snt_search.space import Space, load_space

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))
STORAGE = "sqlite:///s.db"
WARM_UP = 10  # finished trials before the save: past NSGA-II's population of 8, TPE's/GP's 10


def _searcher(space: Space) -> StudySearcher:
    options = StudyOptions(n_trials=WARM_UP + 3, storage=STORAGE, show_progress=False)
    return StudySearcher(space, options, experiment="exp-1", target=WARM_UP + 3)


def _finish(searcher: StudySearcher, space: Space, ray_id: str, number: int) -> None:
    """Tell ``searcher`` that Ray trial ``ray_id`` (Optuna trial ``number``) completed, with a
    made-up value for each of ``space``'s objectives (two or three, e.g. ``model_bytes``)."""
    draw = random.Random(number)
    metrics = {m: draw.uniform(1, 50) for m in space.objectives}
    outcome = {"metrics": {**metrics, "base_accuracy": 80.0}}
    result = {"trial": number, "attempt": "a1", RESULT_KEY: json.dumps(outcome)}
    searcher.on_trial_complete(ray_id, result)


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_a_builtin_space_saves_and_restores_its_sampler_on_ray(path: Path, workdir: Path) -> None:
    space = load_space(path)
    searcher = _searcher(space)
    for i in range(WARM_UP):
        config = searcher.suggest(f"r{i}")
        assert config is not None and config["trial"] == i
        _finish(searcher, space, f"r{i}", i)
    live = searcher.suggest("live")
    assert live is not None

    saved = workdir / "searcher.pkl"
    searcher.save(str(saved))  # what Ray's experiment snapshot does
    assert b"optuna" not in saved.read_bytes()
    restored = pickle.loads(pickle.dumps(_searcher(space)))  # as from Ray's tuner.pkl
    restored.restore(str(saved))
    _finish(restored, space, "live", live["trial"])
    after = restored.suggest("next")
    assert after is not None and after["trial"] == WARM_UP + 1

    study = optuna.load_study(study_name=space.name, storage=STORAGE)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * (WARM_UP + 1) + [TrialState.RUNNING]
    assert trials[-1].user_attrs["ray_trial_id"] == "next"
    assert trials[-1].user_attrs["config"]["plugins"] == after["spec"].plugins
    sampler = restored.study.sampler
    assert type(sampler) is type(searcher.study.sampler)
    if isinstance(sampler, optuna.samplers.NSGAIISampler):  # continued from the study's history
        assert trials[-1].system_attrs[sampler._GENERATION_KEY] >= 1
