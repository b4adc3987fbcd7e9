"""The README's "Python" section runs (issue 13, "Done when": read -> embed -> predict in at
most three lines each, the pipeline on a dict of arrays).

Every ```python block of the section runs, unchanged and in order, in one namespace, in a
temporary folder holding `data/sim` (what the README's `lcfm simulate` line writes). The one
substitution: `lcfm.pretrain` and `lcfm.finetune` train a tiny Astromer for a few steps
(the same calls and folders, with `max_steps`, `batch_size` and the tiny configuration
added), so the section's `runs/pre` and `runs/clf` are real lcfm model folders made in
seconds."""

from __future__ import annotations

import re
from pathlib import Path

import lcfm
import numpy as np
import polars as pl
from lcfm.registry import get_model, get_survey
from lcfm.simulate import simulate

README = Path(__file__).resolve().parents[2] / "README.md"
#: the lines of a block that do something (comments and blank lines aside)
MAX_LINES = {"read": 3, "embed": 3, "predict": 3}


def python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Python\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def _code_lines(block: str) -> int:
    return sum(1 for line in block.splitlines() if line.strip() and not
               line.strip().startswith("#"))


def test_readme_python_section_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    read = next(b for b in blocks if "lcfm.read(" in b)
    embed = next(b for b in blocks if "lcfm.embed(" in b)
    predict = next(b for b in blocks if "lcfm.predict(" in b)
    for name, block in (("read", read), ("embed", embed), ("predict", predict)):
        assert _code_lines(block) <= MAX_LINES[name], (name, block)

    monkeypatch.chdir(tmp_path)
    simulate(get_survey("macho"), 24, Path("data/sim"), seed=3)
    real_pretrain, real_finetune = lcfm.pretrain, lcfm.finetune
    tiny = dict(get_model("astromer").tiny)
    calls = []

    def pretrain(**options):
        calls.append(("pretrain", options))
        return real_pretrain(**options, max_steps=3, batch_size=8, config_overrides=tiny)

    def finetune(**options):
        calls.append(("finetune", options))
        return real_finetune(**options, max_steps=3, batch_size=8)

    monkeypatch.setattr(lcfm, "pretrain", pretrain)
    monkeypatch.setattr(lcfm, "finetune", finetune)
    namespace: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md (Python)", "exec"), namespace)  # noqa: S102

    assert [name for name, _ in calls] == ["pretrain", "finetune"]
    assert (tmp_path / "runs/pre/preprocessor_config.json").exists()
    frame = namespace["frame"]
    assert frame.height == 11 and frame["survey"].unique().to_list() == ["macho"]
    embeddings, catalog = namespace["embeddings"], namespace["catalog"]
    assert embeddings.columns == ["object_id", "label", "n_observations_used", "embedding"]
    assert embeddings.height == catalog.height == frame["object_id"].n_unique()
    classes = list(get_survey("macho").taxonomy.classes)
    assert catalog.columns == ["object_id", "predicted_class", "probability",
                               "n_observations_used", *[f"p_{c}" for c in classes]]
    np.testing.assert_allclose(catalog.select(pl.sum_horizontal(pl.col("^p_.*$")))
                               .to_series().to_numpy(), 1, rtol=1e-5)
    printed = capsys.readouterr().out
    assert "'label'" in printed and "'score'" in printed
    assert namespace["vector"].shape == (get_model("astromer").tiny["hidden_size"],)
    logits, inputs = namespace["logits"], namespace["inputs"]
    assert logits.shape == (len(inputs.windows), len(classes))
    # every observation the MACHO chain keeps (it clips the 1st/99th percentiles) is used
    kept = int(inputs.frame["time"].list.len().sum())
    assert inputs.windows.observations.sum() == kept < namespace["lc"]["time"].size
