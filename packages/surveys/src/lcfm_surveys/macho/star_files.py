"""Per-star MACHO files `lc_F.T.S.{B,R}.mjd`, plain or packed in `lc_F.T.S.tar.bz2`.

Each file is one star in one band: three '#' header lines

    #Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag mean_(B-R) med_(B-R)
    #1 3444 614 5.02878 -69.171 B -5.912 -5.962 -0.335 -0.348
    #MJD Mag Err

then one `MJD Mag Err` line per observation (instrumental magnitudes, hence negative).
Archives are read member by member in memory (tarfile), never extracted to disk. A star may
lack a band (lc_1.4418.1930 has only R).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from lcfm.exceptions import InputFileError
from lcfm.report import IngestReport
from lcfm.survey import Reader

from lcfm_surveys.macho.curves import (
    CurveEmitter,
    RawCurve,
    make_meta,
    parse_numbers,
    sentinel_mask,
    split_macho_id,
)
from lcfm_surveys.macho.taxonomy import REASON_SENTINEL

ARCHIVE_SUFFIXES = (".tar.bz2", ".tbz2", ".tar.gz", ".tgz", ".tar")
_HEADER_NAMES = ("field", "tile", "seq", "ra", "dec", "filter", "mean_mag", "median_mag",
                 "mean_b_minus_r", "median_b_minus_r")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _number(token: str, source, line: int, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise InputFileError(source, f"header {what} {token!r} is not a number",
                             line=line) from None


def _parse_header(header: list[tuple[int, str]], source, name: str) -> tuple[str, str, dict]:
    """(object_id, band, meta values) from the '#' lines, or from the file name."""
    values_line = None
    names: list[str] = []
    for number, text in header:
        tokens = text.lstrip("#").split()
        if not tokens:
            continue
        try:
            float(tokens[0])
        except ValueError:
            names = names or [t.lower() for t in tokens]
            continue
        values_line = (number, tokens)
        break
    from_name = split_macho_id(name.removesuffix(".mjd"))
    if values_line is None:
        if from_name is None or from_name[2] is None:
            raise InputFileError(source, "no '#' header line with 'field tile seq RA Dec "
                                 "filter' and the file name is not lc_F.T.S.{B,R}.mjd")
        object_id, ids, band = from_name
        return object_id, band, ids
    number, tokens = values_line
    if len(tokens) < 6:
        raise InputFileError(source, f"header has {len(tokens)} values, expected at least 6 "
                             "(field tile seq RA Dec filter)", line=number)
    parsed = split_macho_id(".".join(tokens[:3]))
    if parsed is None:
        raise InputFileError(source, f"header field/tile/seq {' '.join(tokens[:3])!r} are not "
                             "integers", line=number)
    object_id, ids, _ = parsed
    band = tokens[5].upper()
    if band not in ("B", "R"):
        raise InputFileError(source, f"header filter {tokens[5]!r} is not B or R", line=number)
    ra = _number(tokens[3], source, number, "RA")
    # the MACHO header gives RA in hours; convert to degrees unless the header says otherwise
    ra_name = names[3] if len(names) > 3 else "ra(hour)"
    meta = {**ids, "ra": ra * 15.0 if "deg" not in ra_name else ra,
            "dec": _number(tokens[4], source, number, "Dec")}
    for key, token in zip(_HEADER_NAMES[6:], tokens[6:], strict=False):
        meta[key] = _number(token, source, number, key)
    return object_id, band, meta


def parse_mjd_text(text: str, source, name: str) -> RawCurve:
    """One `.mjd` file's text -> RawCurve (sentinels masked, nothing dropped yet)."""
    header, data = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        (header if stripped.startswith("#") else data).append((number, stripped))
    object_id, band, meta = _parse_header(header, source, name)
    table = parse_numbers(data, source, ncols=3)
    time, mag, err = table[:, 0], table[:, 1], table[:, 2]
    return RawCurve(object_id=object_id, band=band, time=time, mag=mag, err=err,
                    meta=make_meta("mjd", **meta),
                    missing={REASON_SENTINEL: sentinel_mask(mag, err)})


def _decode(raw: bytes, source) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputFileError(source, f"not a text light curve (byte {exc.start} is not "
                             "ASCII)") from None


def read_star_files(path: Path) -> list[RawCurve]:
    """All curves of a `.mjd` file or of a tar archive of them."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    if not is_archive(path):
        return [parse_mjd_text(_decode(path.read_bytes(), path), path, path.name)]
    curves = []
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not (member.isfile() and member.name.endswith(".mjd")):
                    continue  # directories or notes inside the archive are not light curves
                handle = archive.extractfile(member)
                source = f"{path}[{member.name}]"
                text = _decode(handle.read(), source)
                curves.append(parse_mjd_text(text, source, Path(member.name).name))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputFileError(path, f"unreadable or truncated archive ({exc})") from None
    if not curves:
        raise InputFileError(path, "archive holds no lc_*.mjd light curve")
    # B before R whatever the order inside the archive, so output is deterministic
    return sorted(curves, key=lambda c: (c.object_id, c.band))


class MachoStarFileReader(Reader):
    name = "mjd"
    description = "per-star lc_F.T.S.{B,R}.mjd files, plain or in lc_F.T.S.tar.bz2 archives"
    patterns = ("lc_*.tar.bz2", "lc_*.tbz2", "lc_*.tar.gz", "lc_*.tgz", "lc_*.tar", "*.mjd")

    def matches(self, path: Path) -> bool:
        name = Path(path).name
        return name.endswith(".mjd") or (name.startswith("lc_") and is_archive(Path(path)))

    def read(self, path: Path, report: IngestReport) -> Iterator[dict]:
        path = Path(path)
        emitter = CurveEmitter(path, report)
        for curve in read_star_files(path):
            yield from emitter.emit(curve)
        emitter.finish()


__all__ = ["MachoStarFileReader", "parse_mjd_text", "read_star_files"]
