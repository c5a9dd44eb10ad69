"""The README documents every configuration variable the code reads, with the code's default."""

import re
from pathlib import Path

from dagster_project.lib.settings import VARIABLES

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_read_by_the_code_is_documented() -> None:
    used = set()
    for path in [*(ROOT / "dagster_project").rglob("*.py"), ROOT / "dbt" / "profiles.yml"]:
        used |= set(re.findall(r"LENDSEG_[A-Z_]+", path.read_text(encoding="utf-8")))
    documented = {v for v, _, _ in VARIABLES}
    assert used <= documented, f"undocumented: {sorted(used - documented)}"


def test_readme_table_matches_config() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for var, default, _ in VARIABLES:
        assert f"| `{var}` | `{default}` |" in readme, var


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in setup.splitlines() if line.strip().startswith("python3.11 -m venv")]
    assert len(commands) == 2
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
