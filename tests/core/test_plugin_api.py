"""The survey plugin API of issue 12, item 6: readers see the input root and the options,
label catalogues beside the light curves are skipped (not rejected), unknown raw labels
are counted (never a KeyError), option values stay text unless a type is declared, and
`--labels` reaches a plugin that declares it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lcfm.exceptions import ConfigError, LcfmError
from lcfm.ingest import ingest, read_rows
from lcfm.report import IngestReport
from lcfm.shards import read_shards
from lcfm.survey import SurveyPlugin, Taxonomy, UnknownLabelError, survey_option
from toy_survey import ToyReader, ToySurvey, curve, write


class RootReader(ToyReader):
    """Records the context it was given into each row's meta."""

    def read(self, path: Path, report):
        for row in super().read(path, report):
            row["meta"] = {**row["meta"], "root": str(self.root),
                           "mode": str(self.options["mode"])}
            yield row


class TypedSurvey(ToySurvey):
    name = "toy"
    readers = (RootReader,)
    options = {
        "mode": "fast",  # plain text default: values stay text
        "labels": None,  # accepts --labels
        "scale": 1.5,  # plain non-text default: passed through for the plugin to parse
        "strict": survey_option(False, "stop at the first problem", type=bool),
        "n": survey_option(3, "how many", type="int"),
        "cut": survey_option(0.5, "a threshold", type=float),
        "bands": survey_option(["g"], "bands kept", type=list, choices=("g", "r", "i")),
    }


def test_reader_receives_input_root_and_options(tmp_path):
    folder = tmp_path / "in"
    write(folder / "sub" / "a.toy", curve("x1", [1, 2, 3]))
    write(folder / "b.toy", curve("x2", [1, 2, 3]))
    for workers in (1, 2):  # the pool's worker processes get the same context
        out = tmp_path / f"out{workers}"
        ingest(TypedSurvey(mode="slow"), folder, out, workers=workers)
        metas = read_shards(out)["meta"].to_list()
        assert {m["root"] for m in metas} == {str(folder)}
        assert {m["mode"] for m in metas} == {"slow"}
    rows, _ = read_rows(TypedSurvey(), folder / "b.toy")  # one file: its folder is the root
    assert rows[0]["meta"]["root"] == str(folder)
    assert TypedSurvey().reader_for(folder / "b.toy").root == folder
    assert ToySurvey().formats["toy"].root is None  # outside ingest: no root


def test_label_catalogues_beside_light_curves_are_skipped_not_rejected(tmp_path):
    class CsvToy(ToyReader):
        patterns = ("*.toy", "*.csv")  # a pattern that also matches the catalogues

    class Survey(TypedSurvey):
        readers = (CsvToy,)

    folder = tmp_path / "in"
    write(folder / "a.toy", curve("x1", [1, 2, 3]))
    (folder / "labels.csv").write_text("object_id,label\nx1,A\n")
    (folder / "periods.csv").write_text("object_id,period\nx1,0.5\n")
    (folder / "mine.csv").write_text("object_id,class\nx1,A\n")  # named by --labels
    survey = Survey(labels=str(folder / "mine.csv"))
    assert survey.input_files(folder) == [folder / "a.toy"]
    report = ingest(survey, folder, tmp_path / "out")
    assert report.files_rejected == [] and report.files_read == 1
    assert sorted(Path(f["file"]).name for f in report.files_skipped) == [
        "labels.csv", "mine.csv", "periods.csv"]
    assert all("label catalogue" in f["reason"] for f in report.files_skipped)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(saved["files_skipped"]) == 3 and saved["files_rejected"] == []
    # a catalogue given by name is read (and here rejected by the reader, as before)
    with pytest.raises(LcfmError):
        ingest(survey, folder / "periods.csv", tmp_path / "out2")


def test_unknown_raw_labels_are_counted_not_key_errors(tmp_path):
    class Survey(ToySurvey):
        taxonomy = Taxonomy(("A", "B"), {"a1": "A", "skip": None})

    folder = tmp_path / "in"
    write(folder / "a.toy", curve("x1", [1, 2], label="a1"), curve("x2", [1, 2], label="Zz"),
          curve("x3", [1, 2], label="Zz"), curve("x4", [1, 2], label="skip"),
          curve("x5", [1, 2], label="B"))
    report = ingest(Survey(), folder, tmp_path / "out")
    assert dict(report.labels_unknown) == {"Zz": 2}
    assert report.light_curves_written == 5 and report.balanced
    labels = dict(zip(*read_shards(tmp_path / "out").select("object_id", "label")
                      .to_dict(as_series=False).values(), strict=True))
    assert labels == {"x1": "A", "x2": None, "x3": None, "x4": None, "x5": "B"}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["labels_unknown"] == {
        "Zz": 2}
    taxonomy = Survey.taxonomy
    counted = IngestReport("toy")
    assert taxonomy.map("nope", counted) is None and counted.labels_unknown == {"nope": 1}
    with pytest.raises(UnknownLabelError) as info:
        taxonomy.map("nope")
    assert isinstance(info.value, LcfmError) and isinstance(info.value, KeyError)
    assert str(info.value) == "unknown raw label 'nope'; known: A, B, a1, skip"


def test_option_values_are_text_unless_a_type_is_declared():
    survey = TypedSurvey()
    assert survey.opts == {"mode": "fast", "labels": None, "scale": 1.5, "strict": False,
                           "n": 3, "cut": 0.5, "bands": ["g"]}
    # a command line parsed as JSON hands numbers back: a text option keeps the text
    assert TypedSurvey(labels=123).opts["labels"] == "123"
    assert TypedSurvey(labels="123").opts["labels"] == "123"
    assert TypedSurvey(mode=True).opts["mode"] == "true"
    assert TypedSurvey(scale="2").opts["scale"] == "2"  # undeclared: the plugin parses it
    typed = TypedSurvey(strict="yes", n="7", cut="0.25", bands="g, r")
    assert (typed.opts["strict"], typed.opts["n"], typed.opts["cut"], typed.opts["bands"]) \
        == (True, 7, 0.25, ["g", "r"])
    assert typed.with_options(n=8).opts == {**typed.opts, "n": 8}  # parsed values reparse
    for bad, message in (({"strict": "maybe"}, "not a boolean"), ({"n": "seven"}, "not an int"),
                         ({"n": True}, "not an int"), ({"cut": "x"}, "not a float"),
                         ({"bands": "g,z"}, "not one of g, r, i")):
        with pytest.raises(ConfigError, match=message) as info:
            TypedSurvey(**bad)
        assert "\n" not in str(info.value) and "toy" in str(info.value)
    with pytest.raises(ConfigError, match="type 'date'"):
        survey_option("x", type="date")
    info = TypedSurvey().describe()
    assert info["options"]["n"] == 3 and info["option_types"]["n"] == "int"
    assert info["option_types"]["mode"] is None  # plain default
    assert info["default_window"] is None  # not part of the contract any more


def test_labels_option_reaches_a_plugin_that_declares_it(tmp_path):
    catalogue = tmp_path / "cat.csv"
    assert TypedSurvey(labels=str(catalogue)).labels_path == catalogue
    assert TypedSurvey().labels_path is None and TypedSurvey(labels="").labels_path is None
    with pytest.raises(ConfigError, match="joins no label catalogue") as info:
        ToySurvey(labels=str(catalogue))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="has no option"):
        ToySurvey(colour="blue")


def test_plugin_base_class_needs_no_default_window():
    class Bare(SurveyPlugin):
        name = "bare"

    assert Bare().default_window is None and Bare().describe()["default_window"] is None
