"""--track tensorboard: each finished trial's curve, metrics and hyperparameters in TensorBoard
event files, read back here record by record."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

import pytest
from tensorboardX.proto import event_pb2

from snt_search.cli import main
from snt_search.driver import StudyOptions
from snt_search.ray.searcher import StudySearcher
from snt_search.ray.trainable import RESULT_KEY
from snt_search.space import load_space


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] of every scalar, plus ``text:<tag>`` and ``plugin:<name>``
    entries, from the TFRecord event files under ``folder``."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i : i + 8])
            record = data[i + 12 : i + 12 + length]
            i += 12 + length + 4  # length, its crc, the record, its crc
            event = event_pb2.Event()
            event.ParseFromString(record)
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if value.HasField("simple_value"):
                    out[value.tag].append((event.step, value.simple_value))
                elif plugin:
                    out[f"plugin:{plugin}"].append((event.step, 0.0))
                    if plugin == "text":
                        out[f"text:{value.tag}"].append((event.step, 0.0))
    return out


def test_each_trial_is_a_tensorboard_run(tiny_space: Path, workdir: Path) -> None:
    code = main(["study", "--space", str(tiny_space), "--trials", "2", "--track", "tensorboard"])
    assert code == 0
    root = workdir / "runs" / "tiny" / "tensorboard"
    assert sorted(p.name for p in root.iterdir()) == ["trial-00000", "trial-00001"]
    events = read_events(root / "trial-00000")
    assert [step for step, _ in events["epoch/test_accuracy"]] == [1]  # the smoke budget: 1 epoch
    assert len(events["metric/lambda_max"]) == 1 and events["metric/lambda_max"][0][1] > 0
    assert "metric/accuracy_drop" in events and "text:state/text_summary" in events
    assert "plugin:hparams" in events  # the HParams plugin's session records


def test_a_bad_tracker_is_an_argument_error(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["study", "--space", str(tiny_space), "--track", "mlflow"])
    assert "invalid choice: 'mlflow'" in capsys.readouterr().err


def test_ray_trials_are_written_too(tiny_space: Path, workdir: Path) -> None:
    options = StudyOptions(
        n_trials=2, show_progress=False, track=("tensorboard",), track_dir=workdir / "tb"
    )
    searcher = StudySearcher(load_space(tiny_space), options, experiment="exp-1", target=2)
    config = searcher.suggest("r0")
    assert config is not None
    curve = [{"epoch": 1, "loss": 1.0, "train_accuracy": 50.0, "test_accuracy": 40.0, "seconds": 1}]
    outcome = {
        "metrics": {"lambda_max": 3.0, "accuracy_drop": 2.0, "base_accuracy": 40.0},
        "curve": curve,
    }
    searcher.on_trial_complete(
        "r0", {"trial": config["trial"], "attempt": "a1", RESULT_KEY: json.dumps(outcome)}
    )
    events = read_events(workdir / "tb" / "trial-00000")
    assert events["epoch/loss"] == [(1, 1.0)] and events["metric/lambda_max"] == [(0, 3.0)]


def test_a_space_can_ask_for_a_tracker(tiny_space: Path, workdir: Path) -> None:
    tiny_space.write_text(tiny_space.read_text() + '\n[tracking]\ntensorboard = "tb-here"\n')
    assert load_space(tiny_space).tracking == {"tensorboard": "tb-here"}
    assert main(["study", "--space", str(tiny_space), "--trials", "1"]) == 0
    assert (workdir / "tb-here" / "trial-00000").is_dir()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("mlflow = true", r"\[tracking\] unknown tracker 'mlflow'; trackers: tensorboard"),
        ("tensorboard = 3", r"\[tracking\] tensorboard must be true or a folder"),
    ],
)
def test_a_bad_tracking_table_names_the_key(tiny_space: Path, table: str, message: str) -> None:
    from snt_search.space import SpaceError

    tiny_space.write_text(tiny_space.read_text() + f"\n[tracking]\n{table}\n")
    with pytest.raises(SpaceError, match=message):
        load_space(tiny_space)
