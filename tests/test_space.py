"""Study space files: every rule broken gives an error naming the file, the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE, FakeDist

from snt_search.catalog import find_spaces, resolve_space
from snt_search.registry import get_registry
from snt_search.space import SpaceError, load_space
from snt_search.trial_spec import sample

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_builtin_spaces_load_and_check() -> None:
    spaces = find_spaces()
    assert "mixer_prune" in spaces
    for entry in spaces.values():
        space = load_space(entry.path).check(get_registry())
        assert set(space.budgets) >= {"smoke", "short", "paper"}, entry.path
        # every space minimises both; resnet20_compress adds model_bytes
        assert {"lambda_max": "minimize", "accuracy_drop": "minimize"}.items() <= (
            space.objectives.items()
        ), entry.path


def test_installed_copy_of_spaces_is_found_through_the_entry_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./studies here: only the entry point can find it
    entry = find_spaces()["mixer_prune"]
    assert entry.origin == "snt-search[builtin]"
    assert resolve_space("mixer_prune").name == "mixer_prune"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'sampler = "random"',
            'sampler = "bayes"',
            r"\[study\] sampler must be named explicitly, one of nsga2, tpe",
        ),
        ('sampler = "random"\n', "", r"sampler must be named explicitly"),
        (
            'lambda_max = "minimize"',
            'lambda_max = "smallest"',
            r"\[objectives\] lambda_max must be 'minimize' or 'maximize'",
        ),
        (
            'lambda_max = "minimize"',
            'sharpness = "minimize"',
            r"unknown metric 'sharpness'; metrics are: lambda_max",
        ),
        ('compressor = "magnitude_prune"\n', "", r"\[plugins\] must name a compressor"),
        ('"train.lr"', '"train.learning_rate"', None),  # checked against the registry below
        ('"train.lr"', '"lr"', r"key 'lr' must be 'train.<field>' or '<kind>.<plugin>.<param>'"),
        (
            "low = 1e-3, high = 1e-2",
            "low = 1e-2, high = 1e-3",
            r"low must be < high, got low=0.01 high=0.001",
        ),
        (
            "low = 1e-3, high = 1e-2, log = true",
            "low = 0, high = 1e-2, log = true",
            r"log ranges need low > 0",
        ),
        (
            "low = 1e-3, high = 1e-2, log = true",
            "low = 1e-3, high = 1e-2, lg = true",
            r"unknown field 'lg'",
        ),
        (
            '"optimizer.sam.rho"',
            '"optimizer.sgd.rho"',
            r"not among \[plugins\] optimizer = \['adam', 'sam'\]",
        ),
        (
            "max_iter = 30",
            "max_iters = 30",
            r"\[sharpness\] unknown key 'max_iters'; allowed: method",
        ),
        ("epochs = 1", "epochs = 1.5", r"\[budgets.smoke\] epochs must be int, got 1.5"),
        ("[budgets.smoke]", "[budget.smoke]", r"unknown section \[budget\]"),
        ("seed = 0", "seed = [", r"not valid TOML"),
        (
            'name = "tiny"',
            'name = "tiny"\ndescripton = "typo"',
            r"\[study\] unknown key 'descripton' \(did you mean 'description'\?\); "
            r"allowed: name, description, sampler, seed",
        ),
        ("seed = 0", "sede = 0", r"\[study\] unknown key 'sede' \(did you mean 'seed'\?\)"),
        ('name = "tiny"', "name = 3", r"\[study\] name must be a string, got 3"),
        ("seed = 0", "seed = true", r"\[study\] seed must be an integer, got True"),
    ],
)
def test_malformed_space_names_file_key_and_fix(
    tmp_path: Path, old: str, new: str, message: str | None
) -> None:
    assert old in TINY_SPACE
    path = write(tmp_path, TINY_SPACE.replace(old, new, 1))
    if message is None:
        with pytest.raises(SpaceError, match=r"train has no field 'learning_rate'; fields: epochs"):
            load_space(path).check(get_registry())
        return
    with pytest.raises(SpaceError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_sweep_section_is_validated(tmp_path: Path) -> None:
    needs = write(
        tmp_path, TINY_SPACE.replace('accuracy_drop = "minimize"', 'sweep_auc = "maximize"')
    )
    with pytest.raises(SpaceError, match=r"sweep_auc needs a \[sweep\] section"):
        load_space(needs)
    bad = write(tmp_path, TINY_SPACE + "\n[sweep]\nsparsities = [0.5, 1.5]\n")
    with pytest.raises(
        SpaceError, match=r"sparsities must be a list of >= 2 numbers in \[0, 1\), got \[0.5, 1.5\]"
    ):
        load_space(bad)
    quant = write(tmp_path, TINY_SPACE + '\n[sweep]\ncompressor = "ptq"\n')
    with pytest.raises(
        SpaceError, match=r"'ptq' has no 'sparsity' parameter; sweep a pruning compressor"
    ):
        load_space(quant).check(get_registry())
    ok = load_space(write(tmp_path, TINY_SPACE + "\n[sweep]\n")).check(get_registry())
    assert ok.sweep is not None and ok.sweep.sparsities[1] == 0.1 and len(ok.sweep.sparsities) == 10


def test_check_rejects_unknown_plugin_and_param(tmp_path: Path) -> None:
    bad_plugin = write(
        tmp_path, TINY_SPACE.replace('transform = ["none", "snt"]', 'transform = ["none", "snnt"]')
    )
    with pytest.raises(
        SpaceError,
        match=r"\[plugins\] transform = 'snnt' is not an installed transform "
        r"\(did you mean 'snt'\?\); available: .*snt",
    ):
        load_space(bad_plugin).check(get_registry())
    bad_param = write(tmp_path, TINY_SPACE.replace('"optimizer.sam.rho"', '"optimizer.sam.radius"'))
    with pytest.raises(
        SpaceError,
        match=r"sam' has no parameter 'radius'; it accepts: adaptive, base, momentum, rho",
    ):
        load_space(bad_param).check(get_registry())
    bad_type = write(
        tmp_path,
        TINY_SPACE.replace(
            '"dataset.synthetic.train_size" = 96', '"dataset.synthetic.train_size" = "many"'
        ),
    )
    with pytest.raises(
        SpaceError,
        match=r"'dataset.synthetic.train_size': takes int values \(like its default .*\), got 'many'",
    ):
        load_space(bad_type).check(get_registry())


def test_missing_file_and_unknown_space_name() -> None:
    with pytest.raises(SpaceError, match="does not exist"):
        load_space("nope/missing.toml")
    with pytest.raises(SpaceError, match="no such space; known spaces: .*mixer_prune"):
        resolve_space("mixer_prun")


def test_sampling_is_conditional_and_typed(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, TINY_SPACE)).check(get_registry())
    adam = sample(
        space,
        optuna.trial.FixedTrial({"transform": "snt", "optimizer": "adam", "train.lr": 0.005}),
        space.budget("smoke"),
    )
    assert (
        adam.plugins["optimizer"] == "adam" and "optimizer" not in adam.params
    )  # rho only for sam
    assert adam.train.lr == 0.005 and adam.train.epochs == 1 and adam.train.batch_size == 32
    assert adam.params["compressor"] == {"sparsity": 0.5}
    sam = sample(
        space,
        optuna.trial.FixedTrial(
            {"transform": "none", "optimizer": "sam", "train.lr": 0.005, "optimizer.sam.rho": 0.05}
        ),
        space.budget("smoke"),
    )
    assert sam.params["optimizer"] == {"rho": 0.05}


def test_overrides_fix_plugins_and_params(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, TINY_SPACE))
    changed = space.with_overrides({"dataset": "digits"}, {"train.lr": 0.01})
    assert changed.plugins["dataset"] == ("digits",)
    assert changed.params["train.lr"].fixed and changed.params["train.lr"].value == 0.01
    assert changed.fingerprint != space.fingerprint


def test_a_bad_train_choice_is_refused_when_the_space_is_checked(tmp_path: Path) -> None:
    """Not a traceback in every trial: the file, the key, the allowed values."""
    bad = TINY_SPACE.replace(
        "[sharpness]", '"train.precision" = { choices = ["bf16", "fp16"] }\n\n[sharpness]'
    )
    with pytest.raises(
        SpaceError, match=r"'train.precision': .* one of \('auto', 'bf16', 'fp32'\), got 'fp16'"
    ):
        load_space(write(tmp_path, bad)).check(get_registry())
    good = bad.replace('"fp16"', '"fp32"')
    assert load_space(write(tmp_path, good)).check(get_registry())


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            {"train.lrr": 0.1},
            r"--set train.lrr=0.1: train has no field 'lrr'; fields: epochs, .* "
            r"\(did you mean 'lr'\?\)",
        ),
        (
            {"optimizer.sam.rhoo": 1},
            r"--set optimizer.sam.rhoo=1: optimizer 'sam' has no parameter 'rhoo'; it accepts: "
            r"adaptive, base, momentum, rho \(did you mean 'rho'\?\)",
        ),
        (
            {"foo": 1},
            r"--set foo=1: KEY must be train.<field> or <kind>.<plugin>.<param> .*"
            r"e.g. --set train.lr=0.001",
        ),
        (
            {"optimizer.sgd.rho": 0.1},
            r"--set optimizer.sgd.rho=0.1: optimizer 'sgd' is not among the chosen optimizers "
            r"\(adam, sam\)",
        ),
        (
            {"train.lr": "fast"},
            r'--set train.lr="fast": takes float values \(like its default 0.001\), got \'fast\'',
        ),
        (
            {"train.precision": "fp16"},
            r'--set train.precision="fp16": train.precision must be one of',
        ),
        (
            {"train.lr": {"low": 0.1, "high": 1}},
            r"--set train.lr=.*: a range or a list of choices cannot be given on the command "
            r"line \(--set fixes one value\); put it in the space file's \[params\]",
        ),
    ],
)
def test_a_bad_set_names_the_set_not_the_space_file(
    tmp_path: Path, sets: dict[str, object], message: str
) -> None:
    """A --set typo is the command line's error: the message starts with that --set."""
    space = load_space(write(tmp_path, TINY_SPACE))
    with pytest.raises(SpaceError, match="^" + message) as info:
        space.with_overrides({}, sets).check(get_registry())
    assert str(space.path) not in str(info.value)


def test_a_bad_dataset_option_names_the_option(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, TINY_SPACE)).with_overrides({"dataset": "digts"}, {})
    with pytest.raises(
        SpaceError,
        match=r"^--dataset digts: dataset = 'digts' is not an installed dataset "
        r"\(did you mean 'digits'\?\); available: .*digits",
    ):
        space.check(get_registry())


def test_overrides_remember_their_origin_and_the_file_keeps_its_own(tmp_path: Path) -> None:
    bad_file = TINY_SPACE.replace('"train.lr"', '"train.lrr"')
    space = load_space(write(tmp_path, bad_file)).with_overrides({}, {"optimizer.sam.rho": 0.1})
    with pytest.raises(SpaceError, match=r"space.toml: \[params\] 'train.lrr': train has no"):
        space.check(get_registry())  # the file's own typo still names the file
    twice = load_space(write(tmp_path, TINY_SPACE)).with_overrides({}, {"train.lr": 0.01})
    twice = twice.with_overrides({"optimizer": "sam"}, {"optimizer.sam.rho": "far"})
    with pytest.raises(SpaceError, match=r'^--set optimizer.sam.rho="far": takes float'):
        twice.check(get_registry())
    assert twice.origins["train.lr"] == "--set train.lr=0.01"


BROKEN = {"acme_crash": "raise ImportError('needs libfoo')\n"}


def test_a_broken_plugin_in_a_space_shows_its_import_error(
    tmp_path: Path, fake_dist: FakeDist
) -> None:
    fake_dist(
        "acme-broken",
        {
            "snt_search.backbones": {"tiny": "acme_crash:Tiny"},
            "snt_search.compressors": {"cut": "acme_crash:Cut"},
        },
        BROKEN,
    )
    space = load_space(
        write(
            tmp_path, TINY_SPACE.replace('backbone = "mixer_s"', 'backbone = ["mixer_s", "tiny"]')
        )
    )
    with pytest.raises(SpaceError) as info:
        space.check(get_registry())
    message = str(info.value)
    assert "[plugins] backbone = 'tiny' is installed but broken: acme-broken[tiny]: " in message
    assert "failed to import acme_crash:Tiny: ImportError: needs libfoo" in message
    assert "Fix: make it importable" in message and "pip uninstall acme-broken" in message
    assert "not an installed" not in message
    sweep = load_space(write(tmp_path, TINY_SPACE + '\n[sweep]\ncompressor = "cut"\n'))
    with pytest.raises(SpaceError, match=r"\[sweep\] compressor = 'cut' is installed but broken"):
        sweep.check(get_registry())


def test_a_space_found_twice_is_listed_with_the_collision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """./studies wins over $SNT_SEARCH_STUDIES, which wins over the built-ins; each other file
    of the name is listed with the one used and how to run it, never dropped."""
    from snt_search.catalog import start_notes
    from snt_search.cli import main

    own, extra = tmp_path / "studies", tmp_path / "extra"
    own.mkdir()
    extra.mkdir()
    text = TINY_SPACE.replace('name = "tiny"', 'name = "mixer_prune"')
    (own / "mixer_prune.toml").write_text(text)
    (extra / "mixer_prune.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNT_SEARCH_STUDIES", str(extra))
    spaces = find_spaces()
    used = spaces["mixer_prune"]
    assert used.path == own / "mixer_prune.toml" and used.origin == "./studies"
    others = [e for e in spaces.values() if e.name == "mixer_prune" and e is not used]
    assert [e.origin for e in others] == ["$SNT_SEARCH_STUDIES", "snt-search[builtin]"]
    for entry in others:
        assert entry.shadowed_by == used and entry.error is not None
        assert f"also {used.path} (./studies), which `--space mixer_prune` loads" in entry.error
        assert f"runs only as `--space {entry.path}`" in entry.error
        assert "rename one of the two" in entry.error
    assert resolve_space("mixer_prune").path == used.path
    assert resolve_space(str(others[1].path)).description.startswith("Mixer-S")  # by its path
    space = resolve_space("mixer_prune")
    notes = start_notes("mixer_prune", space, get_registry())
    assert len(notes) == 2 and all(n.startswith("--space mixer_prune: space") for n in notes)
    assert start_notes(str(used.path), space, get_registry()) == []  # a path is unambiguous

    assert main(["spaces", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = [(r["origin"], bool(r["error"])) for r in rows if r["name"] == "mixer_prune"]
    assert listed == [
        ("./studies", False),
        ("$SNT_SEARCH_STUDIES", True),
        ("snt-search[builtin]", True),
    ]


def test_one_file_reached_twice_is_one_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # ./studies is also the editable install's built-in package
    spaces = find_spaces()
    assert not [e for e in spaces.values() if e.error]
    assert spaces["mixer_prune"].origin == "./studies"


def test_a_study_name_that_differs_from_the_file_name_is_a_note(tmp_path: Path) -> None:
    from snt_search.catalog import start_notes

    (note,) = load_space(write(tmp_path, TINY_SPACE)).notes  # space.toml, [study] name "tiny"
    assert note.startswith(f"{tmp_path / 'space.toml'}: [study] name = 'tiny' differs from ")
    assert "call this space 'space' (a space is named by its file)" in note
    assert "stored as 'tiny'" in note
    assert "Fix: rename the file to tiny.toml, or set name = 'space' (or drop it)" in note
    same = tmp_path / "tiny.toml"
    same.write_text(TINY_SPACE)
    assert load_space(same).notes == ()
    unnamed = tmp_path / "other.toml"
    unnamed.write_text(TINY_SPACE.replace('name = "tiny"\n', ""))
    assert load_space(unnamed).notes == () and load_space(unnamed).name == "other"
    space = load_space(tmp_path / "space.toml").with_overrides({"dataset": "digits"}, {})
    assert start_notes(str(tmp_path / "space.toml"), space, get_registry()) == [note]
