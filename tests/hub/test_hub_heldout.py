"""The model card publishes held-out numbers only (issue 9, "Held-out evaluation")."""

from __future__ import annotations

import json

import pytest
from lcfm.exceptions import InputFileError
from lcfm.hub import model_card


def evaluation(path, **keys):
    """metrics.json as `lcfm evaluate` writes it, with `keys` replaced or removed (None)."""
    report = {"n": 5, "accuracy": 0.8, "macro_precision": 0.8, "macro_recall": 0.8,
              "macro_f1": 0.8, "class_balanced_f1": 0.8, "ece": 0.05,
              "per_class": {"RRab": {"precision": 1.0, "recall": 0.75, "f1": 0.8571,
                                     "support": 4},
                            "EC": {"precision": 0.5, "recall": 1.0, "f1": 0.6667,
                                   "support": 1}},
              "n_objects": 5, "objects": 5, "light_curves": 10, "n_observations_used": 600,
              "excluded_training_objects": 19, "n_skipped_unlabeled": 0,
              "n_skipped_foreign_label": 0}
    report.update(keys)
    report = {k: v for k, v in report.items() if v is not None}
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps(report))
    return path


def test_card_states_held_out_objects_and_exclusions(classifier_dir, tmp_path):
    card = model_card(classifier_dir, "org/name", evaluation=evaluation(tmp_path / "e"))
    section = card.split("## Evaluation")[1].split("## How to use")[0]
    assert "on 5 objects (10 light curves" in section
    assert "the 19 training and validation objects in the data were excluded" in section
    assert "| accuracy | 0.800 |" in section


@pytest.mark.parametrize("excluded", [None, "unknown"])
def test_card_refuses_an_evaluation_not_checked_against_training(classifier_dir, tmp_path,
                                                                  excluded):
    """An evaluation from a folder without a split record (or an older lcfm) may score the
    training objects: the card refuses it, in one line."""
    path = evaluation(tmp_path / "e", excluded_training_objects=excluded)
    with pytest.raises(InputFileError, match="not checked against the model's training"):
        model_card(classifier_dir, "org/name", evaluation=path)
