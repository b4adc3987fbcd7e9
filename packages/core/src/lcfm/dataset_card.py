"""Dataset folders as Hub-native datasets: a dataset card (README.md) with `configs:`.

A dataset folder written by `lcfm ingest` or `lcfm simulate` holds Parquet shards
(`part-*.parquet`, `lcfm.shards`) beside `report.json` (and `simulation.json`). Left to
itself, `datasets.load_dataset(folder)` infers the format from the most frequent file
extension and fails on such a folder; the card's YAML front matter names the shards as the
one `train` split (the Hub's `configs:` / `data_files` convention), so the reports stay
where they are and plain `datasets.load_dataset(str(folder))` (or, once pushed with
`lcfm push --dataset`, `load_dataset("ORG/NAME")`) loads the light curves.

The card states where the light curves come from, honestly: a folder with `simulation.json`
holds light curves made by `lcfm simulate` (the survey's simulator, its seed and counts),
and says so; one with only `report.json` holds light curves ingested from survey files. It
lists the light curves per class, the bands, the canonical columns and units (DESIGN.md,
"The canonical light curve"), what ingest rejected, and the licence of the source data when
it is known (given, read from the LICENSE of the survey's bundled sample, or kept from the
card ingest wrote when `lcfm push --dataset` rewrites it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lcfm.dataset_lock import SHARD_GLOB, write_text_atomic
from lcfm.exceptions import DataError, InputFileError

CARD = "README.md"
REPORT = "report.json"
#: written by `lcfm simulate` (lcfm.simulate.driver.SUMMARY_FILE) beside its shards
SIMULATION = "simulation.json"
DATASET_TAGS = ("lcfm", "light-curves", "astronomy", "time-series")
#: licence names in a bundled sample's LICENSE -> Hub licence ids
_LICENCES = {"MIT": "mit", "BSD-3-Clause": "bsd-3-clause", "Apache-2.0": "apache-2.0",
             "Apache License": "apache-2.0", "CC-BY-4.0": "cc-by-4.0"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
#: size buckets of the Hub's `size_categories`
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def is_repo_id(text) -> bool:
    """`ORG/NAME` as the Hub spells repository ids (not a local path)."""
    return isinstance(text, str) and bool(_REPO_ID.match(text)) and not text.startswith(".")


def _front_matter(card: Path) -> tuple[dict, str]:
    import yaml

    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return {}, text
    parts = text.split("---", 2)
    try:
        meta = yaml.safe_load(parts[1]) if len(parts) == 3 else None
    except yaml.YAMLError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), parts[-1]


def hub_repo_id(path, repo_type: str = "model") -> str | None:
    """The Hub repository a local folder came from, when it can be told: a snapshot of the
    Hub cache (`models--ORG--NAME/snapshots/<commit>`, `datasets--ORG--NAME/...`), or a folder
    holding the card lcfm wrote when it was pushed (tag `lcfm`, title `# ORG/NAME`)."""
    parts = Path(str(path)).parts
    prefix = f"{repo_type}s--"
    for i in range(len(parts) - 2):
        if parts[i].startswith(prefix) and parts[i + 1] == "snapshots":
            repo = parts[i][len(prefix):].split("--", 1)
            return "/".join(repo) if len(repo) == 2 else None
    card = Path(str(path)) / CARD
    if not card.is_file():
        return None
    meta, body = _front_matter(card)
    if "lcfm" not in (meta.get("tags") or []):
        return None
    title = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), "")
    return title if is_repo_id(title) else None


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    return data if isinstance(data, dict) else None


def bundled_sample_licence(survey: str, source) -> str | None:
    """The Hub licence id of a survey's bundled sample when `source` is that sample folder
    (one licence named in its LICENSE file; "other" when it names several)."""
    from lcfm.exceptions import ConfigError, PluginNotFoundError
    from lcfm.registry import get_survey

    if source is None:
        return None
    try:
        sample = get_survey(survey).sample_path()
    except (ConfigError, PluginNotFoundError):
        return None
    if Path(str(source)).resolve() != sample.resolve() or not (sample / "LICENSE").is_file():
        return None
    text = (sample / "LICENSE").read_text(errors="replace")
    found = {hub_id for name, hub_id in _LICENCES.items() if name in text}
    return found.pop() if len(found) == 1 else ("other" if found else None)


def _recorded_licence(folder: Path) -> str | None:
    """The licence in the lcfm dataset card already in `folder` (written at ingest, when
    the source was known)."""
    card = Path(folder) / CARD
    if not card.is_file():
        return None
    meta, _ = _front_matter(card)
    licence = meta.get("license") if "lcfm" in (meta.get("tags") or []) else None
    return licence if isinstance(licence, str) and licence != "unknown" else None


def describe_data(data) -> dict:
    """What is known of a model's training data, from what the run recorded (a dataset
    folder, or the description pretrain writes for its bundled or simulated sample).

    Keys: `name` (for the card: a folder name or the description, never a local path),
    `kind` ("simulated", "survey files" or "unknown"), `survey`, `repo_id` (a Hub dataset the
    folder came from), `simulation` (simulation.json) and `report` (report.json)."""
    info = {"name": "-", "kind": "unknown", "survey": None, "repo_id": None,
            "simulation": None, "report": None}
    if data is None or data == "":
        return info
    text = str(data)
    if is_repo_id(text) and not Path(text).exists():
        return {**info, "name": text, "repo_id": text}
    folder = Path(text)
    if folder.is_dir():
        info.update(name=folder.name, repo_id=hub_repo_id(folder, "dataset"),
                    simulation=_read(folder / SIMULATION), report=_read(folder / REPORT))
        if info["simulation"] is not None:
            info.update(kind="simulated", survey=info["simulation"].get("survey"))
        elif info["report"] is not None:
            info.update(kind="survey files", survey=info["report"].get("survey"))
        return info
    info["name"] = folder.name if ("/" in text or "\\" in text) else text
    if "simulated" in text:  # pretrain's own fallback: "512 simulated atlas curves"
        info["kind"] = "simulated"
    elif text.startswith("bundled sample of "):
        info.update(kind="survey files", survey=text.removeprefix("bundled sample of "))
    return info


def provenance(info: dict) -> str:
    """One honest sentence on where light curves come from (`describe_data`)."""
    name = f"`{info['name']}`"
    if info["kind"] == "simulated":
        sim = info.get("simulation") or {}
        if sim:
            classes = ", ".join(f"{c} {n}" for c, n in (sim.get("per_class") or {}).items())
            return (f"{name} holds **simulated** {sim.get('survey')} light curves, made by "
                    f"`lcfm simulate` (the survey's simulator, seed {sim.get('seed')}, "
                    f"{sim.get('light_curves')} light curves: {classes}), not survey "
                    "observations.")
        return f"{name}: **simulated** light curves made by lcfm's survey simulator, not " \
               "survey observations."
    if info["kind"] == "survey files" and info["name"].startswith("bundled sample of "):
        return (f"lcfm's bundled sample of real {info.get('survey')} observations (survey "
                "files shipped with the survey plugin), read by `lcfm ingest`.")
    if info["kind"] == "survey files":
        report = info.get("report") or {}
        counted = (f" ({report.get('light_curves_written')} light curves from "
                   f"{report.get('files_read')} files)" if report else "")
        return (f"{name} holds light curves read from {info.get('survey') or 'survey'} "
                f"files by `lcfm ingest`{counted}.")
    return (f"{name}: the dataset folder was not found when the card was written, so "
            "whether it held survey observations or simulated light curves is not stated.")


def _counts(folder: Path) -> dict:
    """Rows, objects, points, bands and labels of the shards, read column-wise."""
    import polars as pl

    paths = sorted(folder.glob(SHARD_GLOB))
    if not paths:
        raise DataError(f"{folder}: holds no Parquet shards ({SHARD_GLOB})")
    scan = pl.scan_parquet([str(p) for p in paths])
    totals = scan.select(rows=pl.len(), objects=pl.col("object_id").n_unique(),
                         points=pl.col("time").list.len().sum()).collect().row(0, named=True)
    bands = (scan.select(pl.col("band").explode().cast(pl.String).unique().drop_nulls())
             .collect()["band"].sort().to_list())
    labels = (scan.group_by("label").agg(n=pl.len()).sort("label", nulls_last=True)
              .collect())
    per_class = {("unlabeled" if row["label"] is None else row["label"]): int(row["n"])
                 for row in labels.iter_rows(named=True)}
    return {**{k: int(v or 0) for k, v in totals.items()}, "bands": bands,
            "per_class": per_class, "shards": [p.name for p in paths]}


def features(folder: Path) -> list[dict]:
    """The `datasets` features of the shards, as the card's `dataset_info` lists them: the
    shards' Arrow schemas unified, so a meta field that is all-null (type null) in one shard
    and typed in another loads as the typed column instead of failing the cast."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    schemas = [pq.read_schema(p) for p in sorted(Path(folder).glob(SHARD_GLOB))]
    schema = pa.unify_schemas([s.remove_metadata() for s in schemas],
                              promote_options="permissive")
    return Features.from_arrow_schema(schema)._to_yaml_list()


def _size_category(n: int) -> str:
    return next((name for bound, name in _SIZES if n < bound), "n>100M")


def _survey_line(survey: str | None) -> str:
    from lcfm.exceptions import PluginNotFoundError
    from lcfm.registry import get_survey

    if not survey:
        return ""
    try:
        described = get_survey(survey).describe()
    except PluginNotFoundError:
        return f"Survey: {survey}."
    bands = ", ".join(f"{b} ({w:.0f} Å)" for b, w in described["bands"].items())
    return f"Survey: **{survey}**, {described['description'].rstrip('.')}. Bands: {bands}."


def _report_lines(report: dict | None, simulated: bool) -> list[str]:
    if not report:
        return []
    lines = [f"## {'Preprocessing' if simulated else 'Ingest'} report", "",
             "`report.json` (kept beside the shards) accounts for every light curve and point "
             f"{'simulated' if simulated else 'read'}: written or rejected with a reason.", "",
             "| | read | written | rejected |", "|---|---|---|---|",
             f"| light curves | {report.get('light_curves_read')} | "
             f"{report.get('light_curves_written')} | "
             f"{sum((report.get('light_curves_rejected') or {}).values())} |",
             f"| points | {report.get('points_read')} | {report.get('points_written')} | "
             f"{sum((report.get('points_rejected') or {}).values())} |"]
    reasons = {**(report.get("light_curves_rejected") or {})}
    if reasons:
        lines += ["", "Light curves rejected: " + "; ".join(
            f"{reason} ({n})" for reason, n in reasons.items()) + "."]
    if report.get("files_rejected"):
        lines += ["", f"Files rejected: {len(report['files_rejected'])} (listed in "
                      "report.json)."]
    return [*lines, ""]


def _fold_lines(report: dict) -> list[str]:
    dropped = {k: v for k, v in (report.get("dropped") or {}).items() if v}
    return ["## Fold report", "", f"`report.json`: {report.get('light_curves_written')} of "
            f"{report.get('light_curves_read')} light curves folded; dropped: "
            + ("; ".join(f"{k} ({v})" for k, v in dropped.items()) or "none") + ".", ""]


def dataset_card(folder: Path, report: dict | None = None, *, repo_id: str | None = None,
                 license: str | None = None, source=None) -> str:
    """The README.md of a dataset folder (module docstring). `report`: the ingest report
    (default: the folder's report.json); `license`: the Hub licence id of the source data
    (default: that of the survey's bundled sample when `source` is it, else "unknown")."""
    from huggingface_hub import DatasetCardData

    folder = Path(folder)
    info = describe_data(folder)
    report = report if report is not None else info["report"]
    folded_from = (report or {}).get("folded_from")  # written by `lcfm fold`
    origin = describe_data(folded_from) if folded_from else info
    survey = info["survey"] or (report or {}).get("survey")
    counts = _counts(folder)
    if license is None:  # the bundled sample's, else what the folder's own card recorded
        license = (bundled_sample_licence(survey, source) if survey else None) \
            or _recorded_licence(folder) \
            or (_recorded_licence(Path(folded_from)) if folded_from else None) or "unknown"
    simulated = origin["kind"] == "simulated"
    title = repo_id or folder.name
    data = DatasetCardData(
        license=license, pretty_name=f"{'Simulated ' if simulated else ''}{survey or ''} "
                                     "light curves (lcfm canonical format)".strip(),
        tags=[*DATASET_TAGS, *([survey] if survey else []),
              "simulated" if simulated else "observations"],
        size_categories=[_size_category(counts["rows"])],
        configs=[{"config_name": "default",
                  "data_files": [{"split": "train", "path": SHARD_GLOB}]}],
        dataset_info={"features": features(folder)})
    lines = ["---", data.to_yaml(), "---", "", f"# {title}", "",
             f"{counts['rows']:,} light curve(s) of {counts['objects']:,} object(s) "
             f"({counts['points']:,} observations) in lcfm's canonical format, one row per "
             "light curve.", "", "## Provenance", "", provenance(origin), ""]
    if folded_from:
        lines[-1:] = [f"Folded by `lcfm fold` at each object's period "
                      f"({report.get('period_source')}): times are (t - epoch) mod period, "
                      "in days, phase 0 at the object's brightest point; `meta.fold_period`, "
                      "`fold_band` and `fold_epoch` give them. Models trained on these light "
                      "curves read folded light curves only.", ""]
    survey_line = _survey_line(survey)
    if survey_line:
        lines += [survey_line, ""]
    lines += ["## Classes", "", "| label | light curves |", "|---|---|",
              *(f"| {label} | {n:,} |" for label, n in counts["per_class"].items()), "",
              "## Columns", "", "| column | content |", "|---|---|",
              "| object_id | object (and segment) identifier |",
              "| survey | survey name |",
              "| time | days since phase 0, folded at the object's period, sorted |"
              if folded_from else
              "| time | observation times, days, in the survey's native time system "
              "(MJD, BKJD, BTJD), sorted |",
              "| value | magnitude or flux (see value_kind), after the survey's preprocessing |",
              "| error | uncertainty of each value, same unit |",
              f"| band | passband of each observation ({', '.join(counts['bands'])}) |",
              "| value_kind | `mag` or `flux` |", "| label | class, or null |",
              "| meta | survey-specific fields |", "",
              "## How to load", "", "```python", "from datasets import load_dataset", "",
              f'ds = load_dataset("{repo_id}")' if repo_id else
              f'ds = load_dataset("path/to/{folder.name}")  # this folder',
              "```", "", "lcfm reads the folder as it is:", "", "```bash"]
    local = "data" if repo_id else f"path/to/{folder.name}"
    if repo_id:
        lines.append(f"hf download {repo_id} --repo-type dataset --local-dir data")
    lines += [f"lcfm finetune --data {local} --model MODEL --output finetuned", "```", ""]
    lines += _fold_lines(report) if folded_from else _report_lines(report, simulated)
    lines += ["## Licence", ""]
    if simulated:
        lines.append("The light curves are simulated by lcfm; no survey observations are "
                     f"included. Released under `{license}`.")
    elif license == "unknown":
        lines.append("The licence of the source survey files was not recorded: check the "
                     "survey archive's terms of use before redistributing.")
    else:
        lines.append(f"The source survey files are distributed under `{license}`.")
    return "\n".join([*lines, ""])


def write_dataset_card(folder: Path, report: dict | None = None, *,
                       license: str | None = None, source=None) -> Path:
    """Write README.md (the dataset card with `configs:`) into a dataset folder, so that
    `datasets.load_dataset(str(folder))` loads its shards; returns the card's path.
    `source`: the input folder ingest read (names the licence of a bundled sample)."""
    path = Path(folder) / CARD
    write_text_atomic(path, dataset_card(folder, report, license=license, source=source))
    return path
