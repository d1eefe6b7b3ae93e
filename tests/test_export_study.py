"""A study keeps its trials' models as Optuna artifacts; `snt-search export` writes one out."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snt_search import load_model
from snt_search.cli import main
from snt_search.data import TensorLoader
from snt_search.driver import StudyAborted, StudyOptions, run_study
from snt_search.export.artifacts import ARTIFACTS_ATTR, MISSING_ATTR, REMOVED_ATTR, STORE_ATTR
from snt_search.export.store import PrefixedStore, open_store
from snt_search.pareto import front_trials
from snt_search.pipeline import load_data
from snt_search.space import load_space
from snt_search.training import evaluate
from snt_search.trial_spec import TrialSpec

STORAGE = "sqlite:///snt-search.db"
PTQ = {
    'compressor = "magnitude_prune"': 'compressor = "ptq"',
    '"compressor.magnitude_prune.sparsity" = 0.5': (
        '"compressor.ptq.activation_bits" = 8\n"compressor.ptq.finetune_epochs" = 0'
    ),
}


def _ptq_space(tiny_space: Path) -> Path:
    text = tiny_space.read_text()
    for old, new in PTQ.items():
        assert old in text
        text = text.replace(old, new)
    tiny_space.write_text(text)
    return tiny_space


def _study() -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=STORAGE)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def _test_loader(trial: optuna.trial.FrozenTrial) -> TensorLoader:
    """The study's test subset, rebuilt from the trial's stored configuration."""
    config = trial.user_attrs["config"]
    spec = TrialSpec(
        plugins=config["plugins"],
        params=config["params"],
        budget=load_space(Path("tiny.toml")).budget("smoke"),
        seed=config["seed"],
    )
    return TensorLoader.from_bundle(load_data(spec), "test", batch_size=64)


def test_export_of_a_ptq_trial_reloads_to_its_recorded_accuracy(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = load_space(_ptq_space(tiny_space))
    run_study(space, StudyOptions(n_trials=2, show_progress=False, keep_models="all"))
    study = _study()
    trials = _complete(study)
    assert len(trials) == 2
    for t in trials:
        assert set(t.user_attrs[ARTIFACTS_ATTR]) == {"trained", "compressed"}
        assert t.user_attrs[STORE_ATTR] == str(workdir / "runs/tiny/artifacts")
    assert len(list((workdir / "runs/tiny/artifacts").iterdir())) == 4
    trial = trials[-1]
    out = workdir / "exported" / "ptq"
    argv = ["export", "--study-name", "tiny", "--trial", str(trial.number), "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["int8_tensors"] > 0 and done["which"] == "compressed"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    model = load_model(out)
    loader = _test_loader(trial)
    assert abs(evaluate(model, loader) - trial.user_attrs["compressed_accuracy"]) < 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["which"] == "compressed" and config["compressor"]["name"] == "ptq"
    assert config["trial"]["number"] == trial.number
    card = (out / "README.md").read_text()
    for value in ("base_accuracy", "compressed_accuracy", "accuracy_drop", "lambda_max"):
        assert f"{trial.user_attrs[value]:.4g}" in card
    assert "λ_max diagnostics" in card and "converged" in card and "activation_bits" in card

    trained = workdir / "exported" / "fp32"
    assert main([*argv[:-1], str(trained), "--which", "trained"]) == 0
    assert abs(evaluate(load_model(trained), loader) - trial.user_attrs["base_accuracy"]) < 0.1
    assert (trained / "model.safetensors").stat().st_size > (
        out / "model.safetensors"
    ).stat().st_size

    # An existing folder is refused and left as it was.
    before = (out / "README.md").read_text()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "Fix" in err
    assert (out / "README.md").read_text() == before


def test_front_keeps_only_the_front_and_export_says_why_the_rest_is_gone(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = load_space(tiny_space)
    run_study(space, StudyOptions(n_trials=4, show_progress=False, keep_models="all"))
    assert all(t.user_attrs[ARTIFACTS_ATTR] for t in _complete(_study()))
    # Resumed with the default, the next trial drops the models of the dominated ones.
    run_study(space, StudyOptions(n_trials=5, show_progress=False))  # keep_models="front"
    study = _study()
    assert study.user_attrs[REMOVED_ATTR]
    front = {t.number for t in front_trials(study)}
    stored = set()
    for t in _complete(study):
        ids = t.user_attrs.get(ARTIFACTS_ATTR) or {}
        folder = Path(t.user_attrs.get(STORE_ATTR, workdir / "runs/tiny/artifacts"))
        if all((folder / i).is_file() for i in ids.values()) and ids:
            stored.add(t.number)
    assert front and stored == front
    off = [t for t in _complete(study) if t.number not in front]
    assert off, "the seeded tiny study has dominated trials; without them this tests nothing"
    for t in off:
        out = workdir / f"t{t.number}"
        argv = ["export", "--study-name", "tiny", "--trial", str(t.number), "--out", str(out)]
        assert main(argv) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "Pareto front" in err and "--keep-models all" in err
        assert not out.exists()
        was_stored = t.number in (study.user_attrs.get(REMOVED_ATTR) or [])
        assert was_stored or MISSING_ATTR in t.user_attrs


def test_keep_none_stores_nothing_and_export_says_so(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_study(
        load_space(tiny_space), StudyOptions(n_trials=1, show_progress=False, keep_models="none")
    )
    assert not (workdir / "runs/tiny/artifacts").exists()
    argv = ["export", "--study-name", "tiny", "--trial", "0", "--out", "m"]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no stored models" in err and "--keep-models" in err
    assert main([*argv[:4], "7", *argv[5:]]) == 2
    assert "no such trial" in capsys.readouterr().err


def test_a_deleted_or_damaged_artifact_is_a_clear_error(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_study(load_space(tiny_space), StudyOptions(n_trials=1, show_progress=False))
    trial = _complete(_study())[0]
    folder = workdir / "runs/tiny/artifacts"
    compressed = folder / trial.user_attrs[ARTIFACTS_ATTR]["compressed"]
    compressed.write_bytes(compressed.read_bytes()[:100])
    argv = ["export", "--study-name", "tiny", "--trial", "0", "--out", "m"]
    assert main(argv) == 2
    assert "damaged" in capsys.readouterr().err and not (workdir / "m").exists()
    assert not [p for p in workdir.iterdir() if p.name.startswith(".m.")]
    compressed.unlink()
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "missing from the artifact store" in err and "--artifacts" in err


def test_a_failing_upload_fails_the_trial_with_the_reason(tiny_space: Path, workdir: Path) -> None:
    (workdir / "blocked").write_text("a file where the store folder should be")
    options = StudyOptions(n_trials=3, show_progress=False, artifacts=str(workdir / "blocked"))
    with pytest.raises(StudyAborted, match="could not store the trial's models"):
        run_study(load_space(tiny_space), options)
    trial = _study().trials[0]
    assert trial.state == TrialState.FAIL
    assert "could not store the trial's models" in trial.user_attrs["fail_reason"]
    assert "--keep-models none" in trial.user_attrs["fail_reason"]


def test_s3_urls_use_optunas_boto3_store_under_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    class FakeBoto3Store:
        def __init__(self, bucket: str) -> None:
            made.append(bucket)
            self.removed: list[str] = []

        def remove(self, artifact_id: str) -> None:
            self.removed.append(artifact_id)

    monkeypatch.setattr(optuna.artifacts, "Boto3ArtifactStore", FakeBoto3Store)
    store = open_store("s3://models/runs/tiny/")
    assert isinstance(store, PrefixedStore) and made == ["models"]
    store.remove("abc")
    assert store.inner.removed == ["runs/tiny/abc"]
    with pytest.raises(ValueError, match="not a folder or an s3:// URL"):
        open_store("gs://bucket/x")
