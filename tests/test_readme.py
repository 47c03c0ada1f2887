"""The README's tables are checked against the code they describe: every setting
(``settings_table()``) documented once with the right secret flag and default, and the
photo checks (``PHOTO_CHECKS``) and ZIP limits (``limits_table()``) with their values and
help text, so the README cannot drift from what the console does."""

from __future__ import annotations

import re
from pathlib import Path

from core.config import settings_table
from core.imaging import limits_table
from core.ledger.photo_facts import PHOTO_CHECKS

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `([A-Z_]+)` \| ([^|]*) \| (yes)? *\| ")


def _documented() -> dict[str, tuple[str, bool]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, bool]] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice"
            rows[match.group(1)] = (match.group(2).strip(), match.group(3) == "yes")
    return rows


def test_every_setting_is_in_the_readme_and_nothing_else_is() -> None:
    documented = _documented()
    code = {row.name: row for row in settings_table()}
    assert set(documented) == set(code)
    for name, row in code.items():
        default, secret = documented[name]
        assert secret == row.secret, name
        assert default, f"{name} has no default in the README"
        if row.default != "(unset)" and not row.default.startswith("same as"):
            assert _plain(default) == _plain(row.default), name


def _plain(value: str) -> str:
    """A default as text: without backticks, 600.0 read as 600."""
    text = value.strip().strip("`")
    return text[:-2] if re.fullmatch(r"\d+\.0", text) else text


def _rows(header: str) -> dict[str, tuple[str, str]]:
    """name -> (value, meaning) of the README table whose header starts with ``header``."""
    text = README.read_text(encoding="utf-8")
    table = text.split(f"| {header} |", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_the_photo_checks_and_zip_limits_are_the_code_s() -> None:
    for header, table in (("photo check", PHOTO_CHECKS), ("ZIP limit", limits_table())):
        documented = _rows(header)
        assert set(documented) == {row.name for row in table}, header
        for row in table:
            value, meaning = documented[row.name]
            assert float(value.replace(",", "")) == row.value, row.name
            assert meaning == row.help, row.name


def test_ci_runs_exactly_the_readme_s_test_command() -> None:
    """The README's second command (the checks and the tests) is what .ci/run runs."""
    text = README.read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    command = block.splitlines()[1].split("   #", 1)[0].strip()
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert command.endswith("python -m pytest -n auto --dist loadgroup")
    assert command in ci.splitlines()
