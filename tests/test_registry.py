"""Plugin discovery: built-ins through entry points, broken and duplicate plugins, autoload off."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_SPACE, FakeDist

from snt_search.cli import main
from snt_search.registry import AUTOLOAD_ENV, Registry
from snt_search.specs import KINDS, PluginError

GOOD = """
from torch import nn
from snt_search.specs import Backbone

class Tiny(Backbone):
    '''A tiny linear backbone.'''
    defaults = {"width": 4}

    def build(self, *, num_classes, image_size, in_chans, **params):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * image_size**2, num_classes))
"""


def test_builtins_are_entry_points_of_snt_search() -> None:
    registry = Registry.discover()
    builtin = [r for r in registry if r.builtin]
    assert {r.kind for r in builtin} == set(KINDS)
    assert {"digits", "synthetic", "imagefolder", "cifar10"} <= set(registry.names("dataset"))
    assert {"mixer_s"} <= set(registry.names("backbone"))
    assert {"none", "snt"} <= set(registry.names("transform"))
    assert {"adam", "sam"} <= set(registry.names("optimizer"))
    assert "magnitude_prune" in registry.names("compressor")
    assert all(r.ok for r in builtin), [r.error for r in builtin if not r.ok]
    assert all(r.origin.startswith("snt-search ") for r in builtin)


def test_third_party_plugin_is_found_and_named(fake_dist: FakeDist) -> None:
    fake_dist(
        "acme-plugins", {"snt_search.backbones": {"tiny": "acme_good:Tiny"}}, {"acme_good": GOOD}
    )
    registry = Registry.discover()
    record = next(r for r in registry if r.name == "tiny")
    assert record.ok and not record.builtin
    assert record.origin == "acme-plugins 1.2.3"
    assert record.summary == "A tiny linear backbone."
    assert registry.get("backbone", "tiny").name == "tiny"


def test_broken_plugins_are_listed_with_reason_and_the_rest_work(fake_dist: FakeDist) -> None:
    fake_dist(
        "acme-broken",
        {
            "snt_search.backbones": {
                "crashes": "acme_crash:Tiny",
                "notaclass": "acme_shape:thing",
                "abstract": "acme_shape:Half",
            },
        },
        {
            "acme_crash": "raise ImportError('needs libfoo')\n",
            "acme_shape": "from snt_search.specs import Backbone\nthing = 3\nclass Half(Backbone):\n    pass\n",
        },
    )
    registry = Registry.discover()
    errors = {r.name: r.error for r in registry.broken()}
    assert "acme-broken[crashes]" in errors["crashes"] and "needs libfoo" in errors["crashes"]
    assert "subclass of snt_search.specs.Backbone" in errors["notaclass"]
    assert "does not implement build" in errors["abstract"]
    assert "mixer_s" in registry.names("backbone")  # the rest keep working
    with pytest.raises(PluginError, match="installed but broken.*needs libfoo"):
        registry.get("backbone", "crashes")
    with pytest.raises(PluginError, match="--strict"):
        registry.check(strict=True)
    registry.check(strict=False)


def test_duplicate_name_is_broken_and_the_first_wins(fake_dist: FakeDist) -> None:
    other = 'from snt_search_builtins.optimizers.adam import Adam\nclass Other(Adam):\n    """Other."""\n'
    fake_dist("aaa-dup", {"snt_search.optimizers": {"adam": "acme_dup:Other"}}, {"acme_dup": other})
    fake_dist("acme-dup2", {"snt_search.backbones": {"tiny": "acme_g1:Tiny"}}, {"acme_g1": GOOD})
    fake_dist("acme-dup3", {"snt_search.backbones": {"tiny": "acme_g2:Tiny"}}, {"acme_g2": GOOD})
    registry = Registry.discover()
    dups = [r for r in registry.broken() if r.name == "tiny"]
    assert len(dups) == 1 and "duplicate backbone name 'tiny', already provided by" in (
        dups[0].error or ""
    )
    assert registry.names("backbone").count("tiny") == 1
    hijack = next(r for r in registry if r.name == "adam" and not r.builtin)
    assert "already provided by snt-search[adam]" in (
        hijack.error or ""
    )  # built-ins keep their names
    assert next(r for r in registry if r.name == "adam" and r.ok).builtin


def test_autoload_env_var_keeps_only_builtins(
    fake_dist: FakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dist(
        "acme-plugins", {"snt_search.backbones": {"tiny": "acme_good2:Tiny"}}, {"acme_good2": GOOD}
    )
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    registry = Registry.discover()
    assert "tiny" not in registry.names("backbone")
    assert all(r.builtin for r in registry)


def test_unknown_names_list_the_alternatives() -> None:
    registry = Registry.discover()
    with pytest.raises(PluginError, match="no backbone named 'mixr_s'; available: .*mixer_s"):
        registry.get("backbone", "mixr_s")
    with pytest.raises(PluginError, match="unknown plugin kind 'model'"):
        registry.get("model", "x")


def test_register_in_process_validates() -> None:
    registry = Registry.discover()
    with pytest.raises(PluginError, match="must be a subclass"):
        registry.register("backbone", "bad", object)


def test_plugin_params_are_checked() -> None:
    sam = Registry.discover().get("optimizer", "sam")
    assert sam.resolve_params({"rho": 1})["rho"] == 1.0  # int accepted for a float, as a float
    with pytest.raises(
        PluginError, match="has no parameter 'rhoo'; it accepts: adaptive, base, momentum, rho"
    ):
        sam.resolve_params({"rhoo": 0.1})
    with pytest.raises(PluginError, match="'adaptive' must be bool"):
        sam.resolve_params({"adaptive": "yes"})


def test_base_argument_names_resolve_through_with_argument() -> None:
    registry = Registry.discover()
    backbone = registry.get("backbone", "timm:resnet18")
    assert backbone.name == "timm:resnet18" and backbone.defaults["model"] == "resnet18"
    assert registry.has("backbone", "timm:resnet18") and not registry.has("backbone", "mixer_s:big")
    with pytest.raises(
        PluginError, match="names of the form 'base:argument' need a backbone 'base'"
    ):
        registry.get("backbone", "mixer_s:big")


def test_asking_for_a_broken_plugin_gives_its_error_and_the_fix(fake_dist: FakeDist) -> None:
    fake_dist(
        "acme-broken",
        {"snt_search.backbones": {"acmenet": "acme_net:Net"}},
        {"acme_net": "import libfoo_missing\n"},
    )
    registry = Registry.discover()
    cause = "acme-broken[acmenet]: failed to import acme_net:Net: ModuleNotFoundError"
    for name in ("acmenet", "acmenet:big"):  # base:argument names report their broken base
        with pytest.raises(PluginError) as info:
            registry.get("backbone", name)
        message = str(info.value)
        assert "'acmenet' is installed but broken: " + cause in message, message
        assert "libfoo_missing" in message and "Fix: make it importable" in message
        assert "pip uninstall acme-broken" in message and "BROKEN" in message
    assert registry.why_broken("backbone", "mixer_s") is None  # working: nothing to explain
    assert registry.why_broken("backbone", "nonexistent") is None


def test_a_taken_name_is_a_note_that_names_the_plugin_a_study_runs(
    fake_dist: FakeDist, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third-party 'adam' is BROKEN (built-ins keep their names) and a study asking for
    'adam' runs snt-search's: ``Registry.notes`` says so, first for the names a study uses,
    and ``snt-search study`` prints it before it starts."""
    other = 'from snt_search_builtins.optimizers.adam import Adam\nclass Other(Adam):\n    """Other."""\n'
    fake_dist(
        "aaa-dup", {"snt_search.optimizers": {"adam": "acme_dup4:Other"}}, {"acme_dup4": other}
    )
    fake_dist("acme-t1", {"snt_search.backbones": {"tiny": "acme_t1:Tiny"}}, {"acme_t1": GOOD})
    fake_dist("acme-t2", {"snt_search.backbones": {"tiny": "acme_t2:Tiny"}}, {"acme_t2": GOOD})
    fake_dist("acme-imp", {"snt_search.backbones": {"nope": "acme_missing:X"}}, {})
    registry = Registry.discover()
    used, unused = registry.notes({"optimizer": ("adam", "sam"), "backbone": ("mixer_s",)})
    assert used.startswith("this study's optimizer 'adam' runs snt-search[adam], not aaa-dup[adam]")
    assert "Fix: register aaa-dup[adam] under another name in aaa-dup's entry points" in used
    assert '[project.entry-points."snt_search.optimizers"]' in used
    assert unused.startswith("acme-t2[tiny] is BROKEN: its name is taken, so backbone 'tiny' runs")
    assert "acme-t1[tiny]" in unused  # the one that keeps the name
    assert [n[:13] for n in registry.notes()] == [
        "acme-t2[tiny]",
        "aaa-dup[adam]",
    ]  # none: import error
    assert Registry.discover(autoload=False).notes() == []

    (workdir / "s.toml").write_text(TINY_SPACE.replace('name = "tiny"', 'name = "s"'))
    main(["study", "--space", "s.toml", "--budget", "nope", "--json"])  # fails before any trial
    err = " ".join(capsys.readouterr().err.split())
    assert "note: this study's optimizer 'adam' runs snt-search[adam], not aaa-dup[adam]" in err
