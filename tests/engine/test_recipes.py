"""Paper recipes as data (issue 11, "Named recipes"): each recipe resolves to the paper's
optimiser, learning rates, schedule, clipping, loss and selection metric; every field cites
its source; overrides replace one field and are recorded; metrics.json holds the recipe and
--resume refuses a changed one."""

import json

import pytest
import torch
from lcfm.engine.finetune import FinetuneArgs, finetune
from lcfm.exceptions import ConfigError, RunMismatchError
from lcfm.losses import combined_loss, parse_loss
from lcfm.recipes import (
    STAGE_FIELDS,
    Recipe,
    apply_overrides,
    build_optimizer,
    build_scheduler,
    default_recipe,
    describe_recipes,
    get_recipe,
    lr_factor,
    recipe_names,
)
from lcfm.registry import get_model

#: name -> (optimiser class, betas, eps, learning rates, clipping, loss, selection)
PAPER = {
    # ATCAT sect. 2.4: NAdam 2e-4, beta1 = 0; clip 0.1 in pretraining, none in fine-tuning;
    # class-balanced F1 selects (sect. 2.3.1); log-loss + soft F1 (sect. 3.5.4)
    "atcat-pretrain": (torch.optim.NAdam, (0.0, 0.999), 1e-8, (2e-4,), 0.1, "model", None),
    "atcat-finetune": (torch.optim.NAdam, (0.0, 0.999), 1e-8, (2e-4, 2e-4), None, "model",
                       "class_balanced_f1"),
    # AstroCo appendix A: AdamW 7.5e-4 (S) / 7.5e-5 (L)
    "astroco-s": (torch.optim.AdamW, (0.9, 0.999), 1e-8, (7.5e-4,), 1.0, "model", None),
    "astroco-l": (torch.optim.AdamW, (0.9, 0.999), 1e-8, (7.5e-5,), 1.0, "model", None),
    # ASTRAFier sect. 5: AdamW 1e-4 blocks / 1e-3 head, (0.9, 0.95), 1e-8; weighted CE;
    # validation accuracy selects
    "astrafier": (torch.optim.AdamW, (0.9, 0.95), 1e-8, (1e-4, 1e-3), None, "weighted_ce",
                  "accuracy"),
    # Astromer 2: the text names no optimiser (recipe says so); eq. 4 / eq. 5 losses
    "astromer-1-pretrain": (torch.optim.Adam, (0.9, 0.999), 1e-8, (1e-3,), None, "model",
                            None),
    "astromer-2-pretrain": (torch.optim.Adam, (0.9, 0.999), 1e-8, (1e-3,), None, "model",
                            None),
    "astromer-2-finetune": (torch.optim.Adam, (0.9, 0.999), 1e-8, (1e-4, 1e-3), None,
                            "weighted_ce", "macro_f1"),
}


def _groups(recipe: Recipe):
    encoder, head = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    if recipe.stage == "pretrain":
        return [encoder, head], recipe.learning_rate
    return [{"params": [encoder], "lr": recipe.lr_encoder},
            {"params": [head], "lr": recipe.lr_head}], None


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipe_resolves_to_the_papers_optimiser_loss_and_selection(name):
    cls, betas, eps, rates, clip, loss, selection = PAPER[name]
    recipe = get_recipe(name)
    groups, lr = _groups(recipe)
    optimizer = build_optimizer(recipe, groups, learning_rate=lr)
    assert type(optimizer) is cls
    assert tuple(optimizer.defaults["betas"]) == betas and optimizer.defaults["eps"] == eps
    assert tuple(g["lr"] for g in optimizer.param_groups) == pytest.approx(rates)
    assert recipe.max_grad_norm == clip
    assert recipe.loss == loss
    if selection is not None:
        assert recipe.selection == selection


def test_atcat_schedule_warms_up_holds_then_halves_every_6000_steps():
    """ATCAT sect. 2.4: warm-up 1000 steps, steady 2e-4, exponential decay after step
    20000 with a half-life of 6000 steps."""
    recipe = get_recipe("atcat-pretrain")
    optimizer = build_optimizer(recipe, [torch.nn.Parameter(torch.zeros(1))],
                                learning_rate=2e-4)
    scheduler = build_scheduler(recipe, optimizer, 40000)
    seen = []
    for _ in range(3):  # the scheduler follows lr_factor step by step
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([2e-4 * lr_factor(recipe, s, 40000) for s in range(3)])
    lr = {s: 2e-4 * lr_factor(recipe, s, 40000) for s in (500, 1000, 15000, 20000, 26000,
                                                         32000)}
    assert lr[500] == pytest.approx(1e-4)
    assert lr[1000] == lr[15000] == lr[20000] == pytest.approx(2e-4)
    assert lr[26000] == pytest.approx(1e-4) and lr[32000] == pytest.approx(5e-5)


def test_astroco_patience_of_20_epochs_becomes_steps_and_bf16_is_asked():
    recipe = get_recipe("astroco-s")
    assert recipe.batch_size == 256 and recipe.mixed_precision == "bf16"
    assert recipe.dropout["hidden_dropout_prob"] == 0.1
    max_steps, patience = recipe.steps(steps_per_epoch=7)
    assert patience == 20 * 7 and max_steps == 200 * 7


def test_every_recipe_cites_a_source_for_every_field():
    names = recipe_names()
    assert {"lcfm-default", "lcfm-default-pretrain", "atcat-pretrain", "atcat-finetune",
            "astroco-s", "astroco-l", "astrafier", "astromer-1-pretrain",
            "astromer-2-pretrain", "astromer-2-finetune"} <= set(names)
    for record in describe_recipes():
        for field in STAGE_FIELDS[record["stage"]]:
            source = record["sources"][field]
            assert isinstance(source, str) and len(source) > 8, (record["name"], field)
            assert any(word in source for word in ("sect.", "appendix", "Table", "silent",
                                                   "lcfm choice", "model's")), source
    # a field the paper does not give says so and names the value chosen
    assert get_recipe("astrafier").sources["schedule"].startswith("paper silent")
    with pytest.raises(ConfigError, match="no source for eps"):
        Recipe(name="x", stage="pretrain", paper="p", learning_rate=1e-3, max_steps=1,
               sources={f: "s" for f in STAGE_FIELDS["pretrain"] if f != "eps"})


def test_a_paper_configuration_uses_its_own_recipe_by_default():
    assert default_recipe(get_model("astroco"), "astroco-l", "pretrain").name == "astroco-l"
    assert default_recipe(get_model("atcat"), "atcat", "finetune").name == "atcat-finetune"
    assert default_recipe(get_model("astrafier"), "astrafier", "finetune").name == "astrafier"
    assert default_recipe(get_model("astromer"), "astromer-v1",
                          "pretrain").name == "astromer-1-pretrain"
    with pytest.raises(ConfigError, match="no such recipe"):
        get_recipe("nope")


def test_override_replaces_one_field_and_is_recorded():
    recipe, changed = apply_overrides(get_recipe("astrafier"), {"lr_head": 5e-3,
                                                                 "lr_encoder": None})
    assert recipe.lr_head == 5e-3 and recipe.lr_encoder == 1e-4
    assert changed == {"lr_head": 5e-3}
    assert recipe.sources["lr_head"] == "given on the command line"
    assert get_recipe("astrafier").lr_head == 1e-3  # the stored recipe is unchanged
    with pytest.raises(ConfigError, match="not a recipe field"):
        apply_overrides(recipe, {"lr": 1.0})


def test_loss_sums_and_label_smoothing():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1, 1])
    assert parse_loss("ce+soft_f1") == {"ce": 1.0, "soft_f1": 1.0}
    assert parse_loss("ce:1,soft_f1:0.5") == {"ce": 1.0, "soft_f1": 0.5}
    ce = torch.nn.functional.cross_entropy(logits, labels)
    probs = logits.softmax(-1)
    onehot = torch.nn.functional.one_hot(labels, 2).float()
    tp, fp = (probs * onehot).sum(0), (probs * (1 - onehot)).sum(0)
    fn = ((1 - probs) * onehot).sum(0)
    soft_f1 = 1 - (2 * tp / (2 * tp + fp + fn + 1e-8)).mean()
    got = combined_loss({"ce": 1.0, "soft_f1": 0.5}, logits, labels)
    assert float(got) == pytest.approx(float(ce + 0.5 * soft_f1), rel=1e-6)
    smooth = combined_loss("ce", logits, labels, label_smoothing=0.1)
    target = onehot * 0.9 + 0.05
    expected = -(target * logits.log_softmax(-1)).sum(-1).mean()
    assert float(smooth) == pytest.approx(float(expected), rel=1e-6)


def _args(data, out, **kw):
    base = dict(data=data, model="astromer-v2", output=out, max_steps=4, batch_size=8,
                progress=False, baseline=False, workers=0, eval_every=2,
                config_overrides=dict(get_model("astromer").tiny))
    return FinetuneArgs(**{**base, **kw})


def test_finetune_records_the_resolved_recipe_and_its_overrides(labeled_dir, tmp_path):
    summary = finetune(_args(labeled_dir, tmp_path / "run", recipe="astrafier",
                             lr_head=5e-3, loss="ce+soft_f1"))
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())["recipe"]
    assert stored == json.loads(json.dumps(summary["recipe"]))
    assert stored["name"] == "astrafier"
    assert stored["values"]["lr_head"] == 5e-3 and stored["values"]["lr_encoder"] == 1e-4
    assert stored["values"]["betas"] == [0.9, 0.95]
    assert stored["values"]["loss"] == {"ce": 1.0, "soft_f1": 1.0}
    assert stored["overrides"]["lr_head"] == 5e-3 and "lr_encoder" not in stored["overrides"]
    assert stored["sources"]["lr_head"] == "given on the command line"
    assert stored["sources"]["lr_encoder"].startswith("sect. 5")
    assert summary["selection"] == "accuracy"  # ASTRAFier selects on validation accuracy
    assert stored["run"]["max_steps"] == 4 and stored["run"]["mixed_precision"] == "no"


def test_model_objective_is_called_and_falls_back_when_absent(labeled_dir, tmp_path,
                                                              monkeypatch):
    plugin_class = type(get_model("astromer"))
    calls = []

    def own(self, model, outputs, labels, batch, *, recipe, class_weights):
        calls.append(recipe.name)
        return None  # no objective of its own: the generic loss is trained

    monkeypatch.setattr(plugin_class, "finetune_loss", own)
    summary = finetune(_args(labeled_dir, tmp_path / "own", recipe="lcfm-default",
                             loss="model", max_steps=3))
    assert calls == ["lcfm-default"] * 3
    assert summary["steps"] == 3


def test_resume_refuses_a_changed_recipe(labeled_dir, tmp_path):
    out = tmp_path / "resume"
    assert finetune(_args(labeled_dir, out, stop_after=2))["interrupted"]
    with pytest.raises(RunMismatchError, match="recipe.lr_head"):
        finetune(_args(labeled_dir, out, lr_head=7e-3, resume=True))
    with pytest.raises(RunMismatchError, match="recipe"):
        finetune(_args(labeled_dir, out, recipe="astrafier", resume=True))


def test_recipes_listing_and_json(capsys):
    from lcfm_cli.recipes_command import recipes

    recipes()
    lines = capsys.readouterr().out.splitlines()
    atcat = next(line for line in lines if line.startswith("atcat-pretrain "))
    assert "nadam lr 0.0002" in atcat and "clip 0.1" in atcat
    recipes(as_json=True)
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == recipe_names()
    astroco = next(r for r in records if r["name"] == "astroco-s")
    assert astroco["values"]["learning_rate"] == 7.5e-4
    assert astroco["sources"]["learning_rate"].startswith("appendix A")


def test_paper_corpus_options_apply_where_lcfm_builds_the_corpus(tmp_path):
    """Astromer 2 pretrains on one MACHO band with the moment filter (sect. 4.1), AstroCo on
    MACHO R (Table 1): pretraining on the bundled sample ingests it that way, and says so."""
    import json

    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from lcfm.recipes import get_recipe
    from lcfm.registry import get_model, get_survey

    astromer = get_recipe("astromer-2-pretrain")
    assert dict(astromer.survey_options["macho"]) == {"band": "R", "moment_filter": True}
    assert "kurtosis" in astromer.sources["survey_options"]
    assert dict(get_recipe("astroco-s").survey_options["macho"]) == {"band": "R"}
    macho = astromer.survey_plugin(get_survey("macho"))
    assert macho.opts["band"] == "R" and macho.opts["moment_filter"] is True
    pretrain(PretrainArgs(survey="macho", output=tmp_path / "run", model="astromer-v2",
                          max_steps=1, batch_size=4, workers=0, progress=False,
                          config_overrides=dict(get_model("astromer").tiny)))
    report = json.loads((tmp_path / "run" / "data" / "report.json").read_text())
    bands = {b for part in __import__("polars").read_parquet(
        tmp_path / "run" / "data" / "part-*.parquet")["band"].to_list() for b in part}
    assert bands == {"R"}  # B rows left out and counted
    assert sum(report["light_curves_rejected"].values()) > 0
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["recipe"]
    assert recorded["values"]["survey_options"]["macho"]["moment_filter"] is True
