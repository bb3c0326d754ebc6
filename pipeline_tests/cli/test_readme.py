"""The README's examples run against the demo's output; its reference covers every flag."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.cli import build_parser, connect
from pipeline.tables import TABLE_NAMES

README = Path(__file__).resolve().parents[2] / "README.md"
_TESTED = re.compile(r"<!-- tested -->\n```(sql|python)\n(.*?)```", re.DOTALL)


def _examples(language: str) -> list[str]:
    return [code for lang, code in _TESTED.findall(README.read_text()) if lang == language]


def test_the_readme_marks_its_examples():
    assert len(_examples("sql")) >= 3 and len(_examples("python")) >= 2


@pytest.mark.xdist_group("cli_demo")
@pytest.mark.parametrize("index", range(len(_examples("sql"))))
def test_readme_sql_runs_on_the_demo_output(demo_run, index):
    cwd, _ = demo_run
    rows = connect(cwd / "data" / "demo").execute(_examples("sql")[index]).fetchall()
    assert rows, "every example should answer something on the demo data"


@pytest.mark.xdist_group("cli_demo")
@pytest.mark.parametrize("index", range(len(_examples("python"))))
def test_readme_python_runs_on_the_demo_output(demo_run, index, monkeypatch):
    cwd, _ = demo_run
    monkeypatch.chdir(cwd)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_examples("python")[index], f"README.md python #{index}", "exec"), {})
    assert out.getvalue().strip()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_readme_documents_every_command_flag_env_var_and_table():
    text = README.read_text()
    for name, sub in _subcommands().items():
        assert f"`{name}" in text, name
        if name == "emulator":
            continue  # documented by its own --help
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in text, f"{name} {flag}"
    for name in dir(settings):
        if name.endswith("_ENV"):
            var = getattr(settings, name)
            row = next((line for line in text.splitlines() if line.startswith(f"| `{var}` |")), "")
            assert row, var
            default = getattr(settings, "DEFAULT_" + name.removesuffix("_ENV"), None)
            assert default is None or f"{default}`" in row, (var, default)
    for table in TABLE_NAMES:
        assert f"**{table}**" in text, table
