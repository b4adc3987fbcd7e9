"""Light start-up (issue 10, item 7): commands that need no model -- `lcfm --help`,
`surveys`, `ingest`, `simulate` -- import neither torch nor transformers, while
`import lcfm; AutoModel.from_pretrained(folder)` still finds every model plugin with no
`trust_remote_code` (the plugins register on the first lookup of an unknown model type).

Each check runs in a fresh interpreter: this test process has torch imported already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from lcfm.exceptions import ConfigError
from lcfm.registry import get_model, get_survey, lazy_import, model_names, survey_names

#: what a command that needs no model must not import (torch and transformers cost ~2 CPU-s
#: together, and importing a model plugin ~5)
HEAVY = ("torch", "transformers", "accelerate", "peft", "lcfm_models")


def _python(code: str, *flags: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _cli_modules(*commands: list[str]) -> tuple[set[str], list[str]]:
    """Run `lcfm` commands one after the other in one fresh interpreter under
    `-X importtime`; returns (every module imported, the commands' stdout)."""
    code = f"""
        import contextlib, io, json, sys
        from lcfm_cli.main import app
        outputs = []
        for args in {commands!r}:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                try:
                    app(args, standalone_mode=False)
                except SystemExit as exc:
                    assert not exc.code, (args, exc.code)
            outputs.append(buffer.getvalue())
        print(json.dumps(outputs))
    """
    result = _python(code, "-X", "importtime")
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "lcfm_cli.main" in imported  # the importtime trace was read
    return imported, json.loads(result.stdout.strip().splitlines()[-1])


def _heavy(imported: set[str]) -> list[str]:
    return sorted(m for m in imported if m.split(".")[0] in HEAVY)


def test_help_and_surveys_import_no_model_library():
    imported, (help_text, table, listing) = _cli_modules(
        ["--help"], ["surveys"], ["surveys", "--json"])
    assert _heavy(imported) == []
    assert "pretrain" in help_text and "surveys" in help_text
    names = [d["name"] for d in json.loads(listing)]
    assert names == survey_names()
    assert all(name in table for name in names)


def _can(call) -> bool:
    try:
        call()
    except ConfigError:  # no simulator (a third-party survey), no bundled sample (ATLAS)
        return False
    return True


@pytest.mark.parametrize("name", survey_names())
def test_simulate_and_ingest_import_no_model_library(name, tmp_path):
    plugin = get_survey(name)
    commands = []
    if _can(plugin.simulator):
        commands.append(["simulate", "--survey", name, "--n", "6", "--output",
                         str(tmp_path / "simulated")])
    if _can(plugin.sample_path):
        commands.append(["ingest", "--survey", name, "--output", str(tmp_path / "sample")])
    if not commands:
        pytest.skip(f"survey {name!r} has neither a simulator nor a bundled sample")
    imported, _ = _cli_modules(*commands)
    assert _heavy(imported) == []
    for command in commands:
        written = tmp_path / command[-1]
        assert json.loads((written / "report.json").read_text())["light_curves_written"] > 0


def test_import_lcfm_and_every_survey_plugin_is_light():
    result = _python("""
        import sys
        import lcfm
        from lcfm.registry import get_survey, survey_names
        for name in survey_names():
            get_survey(name).describe()
        print(sorted(sys.modules))
    """)
    imported = set(eval(result.stdout))  # a printed list of module names
    assert _heavy(imported) == []
    # the readers' libraries wait for the first file they read
    assert not {"astropy.io.fits", "polars"} & imported


def _saved_tiny(plugin, path):
    """A tiny model of `plugin` saved with its pretraining head, or its classifier."""
    import torch

    config = plugin.make_config("tiny")
    torch.manual_seed(0)
    if plugin.pretraining_class is not None:
        model = plugin.pretraining_class(config)
    else:
        config.num_labels = 3
        model = plugin.classification_class(config)
    model.save_pretrained(path)
    return model


def test_auto_classes_find_every_model_after_import_lcfm(tmp_path):
    """For every model plugin: config, self-supervised or classification head and base model
    through the Auto classes, in one fresh interpreter that imported nothing but lcfm."""
    import torch

    expected = {}
    for name in model_names():
        plugin = get_model(name)
        model = _saved_tiny(plugin, tmp_path / name)
        with torch.no_grad():
            total = sum(float(p.double().sum()) for p in model.parameters())
        expected[name] = [plugin.config_class.__name__, type(model).__name__,
                          plugin.base_model_class.__name__, total,
                          plugin.pretraining_class is not None]
    result = _python(f"""
        import json, sys
        import lcfm
        assert "torch" not in sys.modules and "lcfm_models" not in sys.modules
        from transformers import AutoConfig, AutoModel, AutoModelForPreTraining
        from transformers import AutoModelForSequenceClassification
        found = {{}}
        for name, (*_, pretraining) in {expected!r}.items():
            path = {str(tmp_path)!r} + "/" + name
            config = AutoConfig.from_pretrained(path)
            head = (AutoModelForPreTraining if pretraining
                    else AutoModelForSequenceClassification).from_pretrained(path)
            base = AutoModel.from_pretrained(path)
            assert type(AutoConfig.for_model(config.model_type)) is type(config)
            found[name] = [type(config).__name__, type(head).__name__, type(base).__name__,
                           sum(float(p.double().sum()) for p in head.parameters()),
                           pretraining]
        print(json.dumps(found))
    """)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found) == set(expected)
    for name, values in expected.items():
        assert found[name][:3] == values[:3], name
        assert found[name][3] == pytest.approx(values[3], rel=1e-9), name


@pytest.mark.parametrize("order", ["transformers first", "plugin module first"])
def test_registration_in_any_import_order(order, tmp_path):
    plugin = get_model("astromer")
    _saved_tiny(plugin, tmp_path / "model")
    path = str(tmp_path / "model")
    code = {
        # without `import lcfm` transformers refuses the folder: the registration is lcfm's
        "transformers first": f"""
            from transformers import AutoModel
            try:
                AutoModel.from_pretrained({path!r})
            except ValueError as exc:
                print("refused" if "lcfm_astromer" in str(exc) else exc)
            import lcfm
            print(type(AutoModel.from_pretrained({path!r})).__name__)""",
        "plugin module first": f"""
            import lcfm_models.astromer
            from transformers import AutoConfig, AutoModel
            print(type(AutoModel.from_config(AutoConfig.for_model("lcfm_astromer"))).__name__)
            print(type(AutoModel.from_pretrained({path!r})).__name__)""",
    }[order]
    # a warning would mean a plugin was skipped, e.g. half-imported during registration
    result = _python(code, "-W", "error::UserWarning")
    expected = {"transformers first": ["refused", plugin.base_model_class.__name__],
                "plugin module first": [plugin.base_model_class.__name__] * 2}[order]
    assert result.stdout.split()[-2:] == expected


def test_lazy_import_waits_for_first_use():
    result = _python("""
        import sys
        from lcfm.registry import lazy_import
        json = lazy_import("json")
        assert "json" not in sys.modules or True  # json may come with the interpreter
        colorsys = lazy_import("colorsys")
        rgb_to_hsv = lazy_import("colorsys", "rgb_to_hsv")
        before = "colorsys" in sys.modules
        hsv = rgb_to_hsv(0.0, 0.0, 1.0)
        after_call = "colorsys" in sys.modules
        print(before, after_call, hsv == colorsys.rgb_to_hsv(0.0, 0.0, 1.0), colorsys.ONE_THIRD)
    """)
    assert result.stdout.split() == ["False", "True", "True", repr(1.0 / 3.0)]
    missing = lazy_import("lcfm_no_such_module")
    with pytest.raises(ModuleNotFoundError):
        missing.anything  # noqa: B018  (the failure comes at first use)
