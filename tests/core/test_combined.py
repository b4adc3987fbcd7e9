"""Datasets of several surveys (`lcfm combine`; ASTRAFier sect. 6.3 trains on Kepler + TESS):
bands by wavelength, one value kind, the union of the taxonomies, and training on them."""

import json

import polars as pl
import pytest
from lcfm.combined import CombinedSurvey, combine
from lcfm.exceptions import ConfigError, DataError
from lcfm.registry import get_survey
from lcfm.shards import read_shards
from lcfm.simulate import simulate
from lcfm.survey_info import survey_context


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("combined")
    out = {}
    for name in ("kepler", "tess_qlp", "macho"):
        plugin = get_survey(name)
        simulate(plugin, 2 * len(plugin.taxonomy.classes), root / name, seed=1)
        out[name] = root / name
    return root, out


def test_combined_survey_unions_bands_and_classes_in_member_order():
    survey = get_survey("tess_qlp+kepler")  # names are sorted: one survey either way
    assert isinstance(survey, CombinedSurvey) and survey.name == "kepler+tess_qlp"
    kepler, tess = get_survey("kepler"), get_survey("tess_qlp")
    assert survey.bands == {**kepler.bands, **tess.bands} and len(survey.bands) == 2
    assert survey.value_kind == "flux"
    classes = list(survey.taxonomy.classes)
    assert classes[:len(kepler.taxonomy.classes)] == list(kepler.taxonomy.classes)
    assert set(classes) == set(kepler.taxonomy.classes) | set(tess.taxonomy.classes)
    assert len(classes) == len(set(classes))
    with pytest.raises(ConfigError, match="ingest each of kepler, tess_qlp"):
        survey.input_files(".")


def test_magnitudes_and_fluxes_are_not_combined():
    with pytest.raises(ConfigError, match="values differ in kind.*kepler flux.*macho mag"):
        get_survey("kepler+macho")


def test_combine_links_every_shard_and_reports_each_part(parts, tmp_path):
    _, data = parts
    report = combine([data["kepler"], data["tess_qlp"]], tmp_path / "both")
    frame = read_shards(tmp_path / "both")
    sizes = {n: pl.read_parquet(data[n] / "part-*.parquet").height
             for n in ("kepler", "tess_qlp")}
    assert frame.height == sum(sizes.values()) == report["light_curves_written"]
    assert sorted(frame["survey"].unique().to_list()) == ["kepler", "tess_qlp"]
    assert [p["light_curves"] for p in report["combined_from"]] == list(sizes.values())
    # object ids are only unique within a survey: qualified by it
    assert all(i.startswith(("kepler:", "tess_qlp:")) for i in frame["object_id"].to_list())
    assert frame["object_id"].n_unique() == frame.height
    assert json.loads((tmp_path / "both" / "report.json").read_text())["survey"] == (
        "kepler+tess_qlp")
    name, bands, classes = survey_context(frame)
    assert name == "kepler+tess_qlp" and set(bands) == {"kepler", "tess"}
    assert set(frame["label"].drop_nulls().to_list()) <= set(classes)
    with pytest.raises(DataError, match="already holds"):
        combine([data["kepler"], data["tess_qlp"]], tmp_path / "both")
    with pytest.raises(ConfigError, match="given twice"):
        combine([data["kepler"], data["kepler"]], tmp_path / "again")
    with pytest.raises(DataError, match="also in"):  # the same survey's objects twice
        combine([data["kepler"], tmp_path / "both"], tmp_path / "dup")
    with pytest.raises(ConfigError, match="values differ in kind"):
        combine([data["kepler"], data["macho"]], tmp_path / "mixed")
    assert not list((tmp_path / "mixed").glob("part-*"))


def test_astrafier_trains_on_kepler_plus_tess_and_classifies_tess_alone(parts, tmp_path):
    """ASTRAFier sect. 6.3: train on the combined dataset, deploy on TESS."""
    from lcfm.engine.evaluate import predict
    from lcfm.engine.finetune import FinetuneArgs, finetune
    from lcfm.registry import get_model

    _, data = parts
    combine([data["kepler"], data["tess_qlp"]], tmp_path / "both")
    summary = finetune(FinetuneArgs(
        data=tmp_path / "both", model="astrafier", output=tmp_path / "model", max_steps=3,
        batch_size=8, workers=0, progress=False,
        config_overrides=dict(get_model("astrafier").tiny)))
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["lcfm_survey"] == "kepler+tess_qlp"
    assert set(config["lcfm_bands"]) == {"kepler", "tess"}
    assert summary["steps"] >= 1
    catalog = predict(tmp_path / "model", data["tess_qlp"], tmp_path / "tess.parquet")
    assert catalog.height == pl.read_parquet(data["tess_qlp"] / "part-*.parquet").height


def test_pretraining_on_a_combined_dataset_names_it_by_its_members(parts, tmp_path):
    from lcfm.engine.pretrain import PretrainArgs, pretrain
    from lcfm.registry import get_model

    _, data = parts
    combine([data["kepler"], data["tess_qlp"]], tmp_path / "both")
    with pytest.raises(DataError, match="give --survey kepler\\+tess_qlp"):
        pretrain(PretrainArgs(survey="kepler", output=tmp_path / "no", data=tmp_path / "both",
                              model="astromer-v2", max_steps=2, progress=False))
    metrics = pretrain(PretrainArgs(
        survey="tess_qlp+kepler", output=tmp_path / "pre", data=tmp_path / "both",
        model="astromer-v2", max_steps=2, batch_size=8, workers=0, progress=False,
        config_overrides=dict(get_model("astromer").tiny)))
    assert metrics["steps"] == 2
    config = json.loads((tmp_path / "pre" / "config.json").read_text())
    assert config["lcfm_survey"] == "kepler+tess_qlp"
    assert set(config["lcfm_bands"]) == {"kepler", "tess"}
