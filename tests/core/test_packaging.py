"""Packaging: each package declares every third-party module it imports (issue 13, item 6:
"each package declares what it imports (peft in the package that uses it); test-only tools
in a test extra"). A plain `pip install ./packages/cli` must give a working install, so an
import that only works because requirements.txt or the test requirements happen to pull the
distribution in is a bug this test catches."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))

# Import name -> distribution name, where they differ. Distribution names are compared
# normalised (PEP 503), so only real renames belong here.
DISTRIBUTION_OF = {
    "sklearn": "scikit-learn",
    "light_curve": "light-curve",
    "yaml": "pyyaml",
    "huggingface_hub": "huggingface-hub",
    "PIL": "pillow",
    "umap": "umap-learn",
    "lcfm_surveys": "lcfm-surveys",
    "lcfm_models": "lcfm-models",
    "lcfm_cli": "lcfm-cli",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"unparseable requirement {requirement!r}"
    return _normalise(match.group(1))


def _pyproject(package: Path) -> dict:
    with open(package / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _imported_modules(src: Path) -> dict[str, str]:
    """Top-level module of every absolute import under src (module-level and lazy ones
    inside functions alike) -> the first file that imports it."""
    found: dict[str, str] = {}
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def _own_module(package: Path) -> str:
    return _pyproject(package)["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_third_party_import_is_declared(package):
    project = _pyproject(package)["project"]
    declared = {_requirement_name(r) for r in project.get("dependencies", [])}
    own = Path(_own_module(package)).name
    imports = _imported_modules(package / "src")
    assert imports, f"no imports found under {package}/src"
    missing = {
        module: where
        for module, where in imports.items()
        if module != own
        and module != "__future__"
        and module not in sys.stdlib_module_names
        and _normalise(DISTRIBUTION_OF.get(module, module)) not in declared
    }
    assert not missing, f"{package.name}/pyproject.toml does not declare: {missing}"


def test_peft_is_declared_by_the_package_that_imports_it():
    """--lora must work from `pip install ./packages/cli` alone: peft comes with lcfm."""
    core = PACKAGES[[p.name for p in PACKAGES].index("core")]
    assert "peft" in _imported_modules(core / "src")
    declared = {_requirement_name(r) for r in _pyproject(core)["project"]["dependencies"]}
    assert "peft" in declared


def _requirement_lines(name: str) -> list[str]:
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def test_test_tools_are_only_in_the_test_requirements():
    runtime = {
        _requirement_name(r)
        for r in _requirement_lines("requirements.txt")
        if not r.startswith("-")
    }
    # the test tools are the `test` extra of lcfm-cli, which requirements-test.txt installs
    assert "-e packages/cli[test]" in _requirement_lines("requirements-test.txt")
    cli = _pyproject(REPO / "packages" / "cli")["project"]
    test = {_requirement_name(r) for r in cli["optional-dependencies"]["test"]}
    assert not test & {_requirement_name(r) for r in cli["dependencies"]}
    for tool in ("pytest", "pytest-xdist", "ruff"):
        assert tool not in runtime, f"{tool} is a test tool but sits in requirements.txt"
        assert tool in test, f"{tool} missing from lcfm-cli's test extra"
    # Every third-party module the tests import is installed by one of the two files or
    # comes with a package.
    packages = set()
    for package in PACKAGES:
        project = _pyproject(package)["project"]
        packages |= {_requirement_name(r) for r in project.get("dependencies", [])}
    provided = runtime | test | packages
    tests_imports = _imported_modules(REPO / "tests")
    local = {p.stem for p in (REPO / "tests").rglob("*.py")} | {
        "tests",
        "lcfm",
        "lcfm_surveys",
        "lcfm_models",
        "lcfm_cli",
    }
    local |= {p.name for p in (REPO / "tests").rglob("*") if p.is_dir()}
    missing = {
        module: where
        for module, where in tests_imports.items()
        if module not in local
        and module != "__future__"
        and module not in sys.stdlib_module_names
        and _normalise(DISTRIBUTION_OF.get(module, module)) not in provided
    }
    assert not missing, f"test imports not installed by any requirements file: {missing}"


def test_pins_satisfy_the_package_ranges():
    """requirements.txt pins must fall inside every package's declared range, or the
    editable install in CI would resolve differently from a plain package install."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = {}
    for line in _requirement_lines("requirements.txt"):
        if line.startswith("-"):
            continue
        req = Requirement(line)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[_normalise(req.name)] = Version(exact[0])
    assert "peft" in pins and "torch" in pins
    for package in PACKAGES:
        for line in _pyproject(package)["project"]["dependencies"]:
            req = Requirement(line)
            pin = pins.get(_normalise(req.name))
            if pin is not None:
                assert req.specifier.contains(pin, prereleases=True), (
                    f"{package.name}: {line!r} excludes the pin {req.name}=={pin}"
                )
