"""docs/patterns.md names the code and the tests of each pattern: every path it names exists.

A path is a backticked span that starts at a top-level folder of the repository
(``chassis/src/chassis/auth/tokens.py``; a test, ``edge/gateway/tests/test_failover.py::test_...``,
must be defined in its file), or a
relative link (``[ADR 0003](adr/0003-gateway.md)``). A span with a placeholder (``<name>``)
or a ``*`` stands for several paths and needs one of them to exist; ``{a,b}`` is expanded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = ROOT / "docs" / "patterns.md"

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_BRACES = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER = re.compile(r"<[^<>/]+>")


def _top_level_folders() -> frozenset[str]:
    return frozenset(
        entry.name for entry in ROOT.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


def _expanded(path: str) -> list[str]:
    match = _BRACES.search(path)
    if match is None:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [
        expanded
        for option in match.group(1).split(",")
        for expanded in _expanded(head + option.strip() + tail)
    ]


def _named_paths(text: str, folders: frozenset[str]) -> list[str]:
    """The repository paths the page names, as written (a test as ``path::name``)."""
    named: list[str] = []
    for span in _CODE_SPAN.findall(text):
        for word in span.split():
            candidate = word.rstrip(".,;:)")
            path = candidate.split("::")[0]
            if "/" in path and path.split("/")[0] in folders:
                named.append(candidate)
    named.extend(
        str((PATTERNS.parent / target).resolve().relative_to(ROOT))
        for target in _LINK.findall(text)
        if "://" not in target
    )
    return named


def _exists(named: str) -> bool:
    path, _, test = named.partition("::")
    if test:
        file = ROOT / path
        return file.is_file() and f"def {test}(" in file.read_text(encoding="utf-8")
    pattern = _PLACEHOLDER.sub("*", path)
    if "*" in pattern:
        return any(ROOT.glob(pattern))
    return (ROOT / path).exists()


def test_the_page_names_paths_so_the_check_has_something_to_check() -> None:
    named = _named_paths(PATTERNS.read_text(encoding="utf-8"), _top_level_folders())

    assert len(named) > 50
    assert "chassis/src/chassis/auth/client_credentials.py" in named


def test_every_path_docs_patterns_names_exists() -> None:
    named = _named_paths(PATTERNS.read_text(encoding="utf-8"), _top_level_folders())

    missing = sorted({p for path in named for p in _expanded(path) if not _exists(p)})

    assert missing == [], f"docs/patterns.md names paths that do not exist: {missing}"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("`chassis/src/chassis/auth.py`", ["chassis/src/chassis/auth.py"]),
        ("`edge/gateway/tests/test_a.py::test_b`", ["edge/gateway/tests/test_a.py::test_b"]),
        ("`.venv/bin/pytest chassis/tests/messaging -k nats`", ["chassis/tests/messaging"]),
        ("`uow.outbox.add_event(...)` and `contracts`", []),
        ("[ADR 0003](adr/0003-gateway.md)", ["docs/adr/0003-gateway.md"]),
        ("[the bus](https://example.org/a/b)", []),
    ],
)
def test_what_counts_as_a_named_path(text: str, named: list[str]) -> None:
    assert _named_paths(text, frozenset({"chassis", "edge", "docs"})) == named


def test_a_path_that_does_not_exist_is_found_missing() -> None:
    assert not _exists("chassis/src/chassis/no_such_module.py")
    assert _exists(
        "tests/docs/test_patterns_paths.py::test_a_path_that_does_not_exist_is_found_missing"
    )
    assert not _exists("tests/docs/test_patterns_paths.py::test_no_such_test")
    assert _exists("services/<name>/src")
    assert _exists("services/*/tests/unit/")
    assert not _exists("services/*/tests/no_such_folder/")
    assert _expanded("a/{b,c}/d") == ["a/b/d", "a/c/d"]
