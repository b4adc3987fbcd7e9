"""Registry-driven: every model plugin trains on a batch from every survey's bundled sample
(tiny configurations), and reloads through the Auto classes in a fresh process."""

import json
import os
import subprocess
import sys

import pytest
import torch
from lcfm.data import LightCurveDataset
from lcfm.exceptions import ConfigError
from lcfm.ingest import ingest
from lcfm.registry import get_model, get_survey, model_names, survey_names
from lcfm.shards import read_shards


def _surveys_with_samples():
    names = []
    for name in survey_names():
        try:
            get_survey(name).sample_path()
        except ConfigError:
            continue
        names.append(name)
    return names


@pytest.fixture(scope="session")
def sample_rows(tmp_path_factory):
    """Up to 4 light curves (2 for long-cadence surveys) of each bundled sample."""
    rows = {}
    for name in _surveys_with_samples():
        out = tmp_path_factory.mktemp(f"sample-{name}")
        ingest(get_survey(name), None, out)
        dataset = LightCurveDataset(read_shards(out))
        rows[name] = [dataset[i] for i in range(min(4, len(dataset)))]
    return rows


def _tiny(plugin, **extra):
    config = plugin.make_config("tiny", **extra)
    return config


@pytest.mark.parametrize("model_name", model_names())
@pytest.mark.parametrize("survey_name", _surveys_with_samples())
def test_forward_backward(model_name, survey_name, sample_rows):
    plugin, survey = get_model(model_name), get_survey(survey_name)
    rows = sample_rows[survey_name]
    labels = list(survey.taxonomy.classes[:2])
    rows = [{**r, "label": labels[i % 2]} for i, r in enumerate(rows)]
    torch.manual_seed(0)
    heads = [("classify", plugin.classification_class)]
    if plugin.pretraining_class is not None:
        heads.append(("pretrain", plugin.pretraining_class))
    for task, cls in heads:
        config = _tiny(plugin)
        if task == "classify":
            config.num_labels = 2
        config = plugin.prepare_config(config, _dataset_from(rows))
        model = cls(config)
        collate = plugin.collator(config, task=task, train=True, bands=survey.bands,
                                  label2id={c: i for i, c in enumerate(labels)}, seed=0)
        batch = collate(rows)
        out = model(**batch)
        loss = out.loss
        assert loss is not None and torch.isfinite(loss), (task, loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def _dataset_from(rows):
    from lcfm.schema import make_frame

    return LightCurveDataset(make_frame([{k: r[k] for k in r if k != "index"} for r in rows]))


def test_save_and_load_every_model_in_a_fresh_process(tmp_path, sample_rows):
    expected = {}
    for name in model_names():
        plugin = get_model(name)
        config = _tiny(plugin)
        config.num_labels = 2
        model = plugin.classification_class(config).eval()
        model.save_pretrained(tmp_path / name)
        survey = get_survey("elasticc" if "elasticc" in sample_rows else "macho")
        collate = plugin.collator(config, task="classify", train=False, bands=survey.bands,
                                  label2id=None, seed=0)
        batch = collate(sample_rows[survey.name][:2])
        torch.save(batch, tmp_path / f"{name}.batch.pt")
        with torch.no_grad():
            expected[name] = model(**batch).logits.tolist()
    code = (
        "import json, sys, torch, lcfm\n"
        "from transformers import AutoModel, AutoModelForSequenceClassification\n"
        "out = {}\n"
        f"for name in {model_names()!r}:\n"
        f"    path = {str(tmp_path)!r} + '/' + name\n"
        "    base = AutoModel.from_pretrained(path)\n"
        "    model = AutoModelForSequenceClassification.from_pretrained(path).eval()\n"
        "    batch = torch.load(path + '.batch.pt')\n"
        "    with torch.no_grad():\n"
        "        out[name] = [type(base).__name__, model(**batch).logits.tolist()]\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for name in model_names():
        cls_name, logits = loaded[name]
        assert cls_name == type(get_model(name).base_model_class(_tiny(get_model(name)))).__name__
        assert torch.allclose(torch.tensor(logits), torch.tensor(expected[name]), atol=1e-5)
