"""The documentation's links: every relative link in the repository's Markdown resolves inside it.

Checked: every ``*.md`` file of the repository (``README.md``, ``docs/**``, the
READMEs of ``calibration/``, ``calibration/validation/`` and ``bench/``...),
outside hidden and build folders. A link to another page must name a file or
folder that exists in the repository, not one beside it (``../shared/...``)
nor an absolute path; a ``#fragment`` on a Markdown page must name one of its
headings (GitHub's anchors). Links to ``http(s)://`` and ``mailto:`` are not
followed. Code (fenced blocks and inline spans) is not searched for links.

And the reference keeps up with the code: every model kind that cnsim itself
registers and every built-in scenario is named in ``docs/reference/scenarios.md``.
"""

from __future__ import annotations

import re
import unicodedata
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {"build", "dist", "node_modules", "__pycache__"}
EXTERNAL_SCHEMES = ("http", "https", "mailto")

FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[`~]*[ \t]*$|\Z)", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text], one level of nested brackets
    r"\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # (target, balanced parentheses
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"  # "title")
)
REFERENCE_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*(<[^>\n]*>|\S+)", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
ATX_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^[ \t]{0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<[a-z][^>]*\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def markdown_files(root: Path = REPO) -> list[Path]:
    """Every ``*.md`` under ``root``, outside hidden folders (``.venv``, ``.git``...) and build folders."""
    found = []
    for path in sorted(root.rglob("*.md")):
        parts = path.relative_to(root).parts[:-1]
        if any(part.startswith(".") or part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts):
            continue
        found.append(path)
    return found


def _blank(match: re.Match[str]) -> str:
    """The matched text with every character but newlines replaced by a space (offsets kept)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def without_code(text: str) -> str:
    """``text`` with fenced code blocks and inline code spans blanked out, line numbers kept."""
    return CODE_SPAN.sub(_blank, FENCE.sub(_blank, text))


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link in Markdown ``text``, outside code."""
    prose = without_code(text)
    found = []
    for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_LINK):
        for match in pattern.finditer(prose):
            target = match.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1].strip()
            found.append((prose.count("\n", 0, match.start()) + 1, target))
    return sorted(found)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, letters, digits, ``_`` and ``-`` kept, spaces to ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading reads as its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    out = []
    for char in text:
        if char == " ":
            out.append("-")
        elif char in "-_" or unicodedata.category(char)[0] in "LMN":
            out.append(char)
    return "".join(out)


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown page offers: its headings' slugs (``-1``, ``-2`` for repeats) and HTML ids."""
    prose = FENCE.sub(_blank, text)
    lines = prose.split("\n")
    headings = []
    for index, line in enumerate(lines):
        atx = ATX_HEADING.match(line)
        if atx:
            headings.append(atx.group(1))
        elif index and SETEXT_UNDERLINE.match(line) and lines[index - 1].strip() and "|" not in lines[index - 1]:
            headings.append(lines[index - 1].strip())
    seen: dict[str, int] = {}
    found = set()
    for heading in headings:
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(prose))
    return found


def problems(path: Path, root: Path = REPO) -> list[str]:
    """``file:line: target: what is wrong`` for every link of ``path`` that does not resolve inside ``root``."""
    root = root.resolve()
    text = path.read_text(encoding="utf-8")
    shown = path.relative_to(root)
    out = []
    for line, target in links(text):
        where = f"{shown}:{line}: {target or '(empty)'}"
        scheme = SCHEME.match(target)
        if scheme:
            if scheme.group(1).lower() not in EXTERNAL_SCHEMES:
                out.append(f"{where}: a {scheme.group(1)}: link leaves the repository")
            continue
        if not target:
            out.append(f"{where}: empty link")
            continue
        if target.startswith("//"):
            out.append(f"{where}: a scheme-relative link; write https://")
            continue
        if target.startswith("/"):
            out.append(f"{where}: an absolute path; write it relative to {shown.parent.as_posix() or '.'}/")
            continue
        address, _, fragment = target.partition("#")
        address = unquote(address.partition("?")[0])
        if not address:
            if fragment and fragment not in anchors(text):
                out.append(f"{where}: no heading #{fragment} on this page")
            continue
        resolved = (path.parent / address).resolve()
        if not resolved.is_relative_to(root):
            out.append(f"{where}: leaves the repository (resolves to {resolved})")
            continue
        inside = resolved.relative_to(root)
        if any(part.startswith(".") for part in inside.parts):
            out.append(f"{where}: points into a hidden folder, which a clone does not have")
            continue
        if not resolved.exists():
            out.append(f"{where}: no such file or folder ({inside.as_posix()})")
            continue
        if (fragment and resolved.is_file() and resolved.suffix == ".md"
                and fragment not in anchors(resolved.read_text(encoding="utf-8"))):
            out.append(f"{where}: {inside.as_posix()} has no heading #{fragment}")
    return out


DOCUMENTS = markdown_files()


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.relative_to(REPO).as_posix() for p in DOCUMENTS])
def test_every_relative_link_resolves_inside_the_repository(path: Path) -> None:
    found = problems(path)
    assert not found, "links that do not resolve inside the repository:\n" + "\n".join(found)


def test_the_readmes_and_docs_are_checked() -> None:
    checked = {p.relative_to(REPO).as_posix() for p in DOCUMENTS}
    expected = {"README.md", "calibration/README.md", "calibration/validation/README.md", "bench/README.md",
                "docs/index.md", "docs/design.md", "docs/tutorial.md"}
    assert expected <= checked, f"not found: {sorted(expected - checked)}"


def test_the_checker_finds_broken_and_escaping_links(tmp_path: Path) -> None:
    """The check can fail: each kind of bad link is reported, and good ones are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Second part\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[ok](docs/page.md) [ok anchor](docs/page.md#second-part) [ok here](#top) [ok web](https://example.org)\n"
        "[broken](docs/missing.md)\n"
        "[outside](../shared/DESIGN.md)\n"
        "[absolute](/docs/page.md)\n"
        "[bad anchor](docs/page.md#third-part)\n"
        "[file](file:///etc/passwd)\n"
        "`[in code](nowhere.md)`\n\n"
        "```\n[in a fence](nowhere.md)\n```\n"
        "[spread over\ntwo lines](docs/gone.md)\n\n"
        "[ref]: docs/also-missing.md\n",
        encoding="utf-8",
    )
    found = problems(tmp_path / "README.md", tmp_path)
    reported = [item.split(": ", 2)[1] for item in found]
    assert reported == [
        "docs/missing.md", "../shared/DESIGN.md", "/docs/page.md", "docs/page.md#third-part",
        "file:///etc/passwd", "docs/gone.md", "docs/also-missing.md",
    ], "\n".join(found)
    assert [item.split(":", 2)[1] for item in found] == ["4", "5", "6", "7", "8", "14", "17"]
    assert "leaves the repository" in found[1]


def test_headings_give_githubs_anchors() -> None:
    page = "# cnsim — design\n## `cnsim sweep SCENARIO --out DIR`\n## Notes\n## Notes\nTitle\n=====\n"
    assert anchors(page) == {"cnsim--design", "cnsim-sweep-scenario---out-dir", "notes", "notes-1", "title"}


def test_every_model_kind_and_built_in_scenario_is_in_the_scenario_reference() -> None:
    reference = (REPO / "docs" / "reference" / "scenarios.md").read_text(encoding="utf-8")
    kinds = {ep.name for ep in metadata.distribution("cnsim").entry_points if ep.group == "cnsim.models"}
    builtins = {p.stem for p in (REPO / "models" / "scenarios").iterdir()
                if p.suffix in (".yaml", ".yml", ".toml", ".json")}
    assert kinds and builtins
    missing = sorted(name for name in kinds | builtins if f"`{name}`" not in reference)
    assert not missing, f"docs/reference/scenarios.md does not name: {', '.join(missing)}"
