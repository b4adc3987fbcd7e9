"""Row-shape checks shared by the CSV readers of every survey (issue 9, item 9: "CSV readers
check the field count of every row").

A file cut mid-row (a copy interrupted, a download stopped) still parses as CSV: its last
row simply has fewer fields, which table readers fill with nulls and a reader would then
take for missing values. Every CSV reader therefore runs `check_field_counts` on the raw
text first: each non-blank row must have exactly as many fields as the header, else a
one-line `InputFileError` names the file and the line. Blank lines (an empty trailing line
included) are not rows.
"""

from __future__ import annotations

import csv
import io

from lcfm.exceptions import InputFileError


def decode_text(data: bytes, source, encoding: str = "utf-8") -> str:
    """`data` decoded, or an InputFileError naming the line of the first undecodable byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(source, f"not a text file (byte {exc.start} is not "
                             f"{encoding.upper()})", line=line) from None


def csv_rows(text: str, source, *, delimiter: str = ",", quotechar: str | None = '"',
             first_line: int = 1) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row of `text`, header first, each row
    checked to have the header's number of fields. `first_line` is the line number of the
    first line of `text` (when a caller skipped lines before it)."""
    options = {"quotechar": quotechar} if quotechar else {"quoting": csv.QUOTE_NONE}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True,
                        **options)
    rows: list[tuple[int, list[str]]] = []
    width = None
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # NUL bytes, an unterminated quote, ...
            raise InputFileError(source, f"malformed CSV ({exc})",
                                 line=reader.line_num + first_line - 1) from None
        line = reader.line_num + first_line - 1
        if not any(f.strip() for f in fields):
            continue
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InputFileError(source, f"row has {len(fields)} fields, the header has "
                                 f"{width} (a file cut mid-row?)", line=line)
        rows.append((line, fields))
    return rows


def check_field_counts(data: bytes | str, source, *, delimiter: str = ",",
                       quotechar: str | None = '"') -> None:
    """Raise InputFileError at the first row whose field count differs from the header's."""
    text = decode_text(data, source) if isinstance(data, bytes) else data
    csv_rows(text, source, delimiter=delimiter, quotechar=quotechar)
