"""pyproject.toml uses the packaging metadata setuptools builds without deprecation warnings."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    """A TOML-table license makes setuptools print a deprecation warning at every build step;
    SPDX strings need setuptools 77 or newer."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    (setuptools,) = [
        Requirement(r) for r in project["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert setuptools.specifier.contains(Version("77"))
    assert not setuptools.specifier.contains(Version("76.9"))
