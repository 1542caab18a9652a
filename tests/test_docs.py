"""The project's reference documents stay honest (docs/testing.md 6, docs/README.md).

- every numbered heading in docs/*.md has its stable anchor ``<a id="s4.3"></a>`` on the line
  before it, anchors are unique per file, and links between the documents resolve;
- every citation of a reference section in the code, the tests, the tools, the benchmarks, the
  README and the notebooks names a section that exists in docs/<name>.md;
- nothing in the project points at reference material outside the repository.

Citations are parsed in the forms this repository uses: "jpki-card.md 4.3", "jpki-card.md
section 6", "jpki-card.md sections 2 (AIDs), 3 (file maps)", "nfc-timing.md 12-16",
"jpki-card.md 4.1/4.3", "jpki-card.md 3.3 / 3.4", "smartphone-service.md, section 11", lists
("jpki-card.md 2.3, 3, 4, 8") that may continue on the next line, and links
("jpki-card.md#s4.3"). A citation without a number names the whole document and is fine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: Documents that code may cite by section number.
CITABLE = ("jpki-card", "smartphone-service", "globalplatform", "nfc-timing", "testing")

# --- structure of a reference document -----------------------------------------------------

HEADING = re.compile(r"^#{1,6}[ \t]+(\d+(?:\.\d+)*)\.?[ \t]")
ANCHOR_LINE = re.compile(r'^<a id="([^"]*)"></a>$')
FENCE = re.compile(r"^[ \t]*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Doc:
    path: Path
    lines: tuple[str, ...]
    headings: tuple[tuple[int, str], ...]  # (line index, section number), outside code fences
    anchors: tuple[tuple[int, str], ...]  # (line index, id) of lines that hold only an anchor
    prose: tuple[tuple[int, str], ...]  # (line index, text) of lines outside code fences

    @property
    def sections(self) -> set[str]:
        return {number for _, number in self.headings}

    @property
    def anchor_ids(self) -> set[str]:
        return {anchor for _, anchor in self.anchors}


def read_doc(path: Path) -> Doc:
    lines = tuple(path.read_text(encoding="utf-8").splitlines())
    headings, anchors, prose = [], [], []
    fenced = False
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        prose.append((i, line))
        if m := HEADING.match(line):
            headings.append((i, m.group(1)))
        elif m := ANCHOR_LINE.match(line):
            anchors.append((i, m.group(1)))
    return Doc(path, lines, tuple(headings), tuple(anchors), tuple(prose))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


DOC_FILES = sorted(DOCS.glob("*.md"))


def test_citable_documents_exist():
    missing = [f"docs/{name}.md" for name in CITABLE if not (DOCS / f"{name}.md").is_file()]
    assert not missing, f"reference documents missing: {missing}"
    assert (DOCS / "README.md").is_file(), "docs/README.md (the index) is missing"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_numbered_headings_have_stable_anchors(path: Path):
    doc = read_doc(path)
    where = rel(path)
    problems = []
    for i, number in doc.headings:
        wanted = f'<a id="s{number}"></a>'
        if i == 0 or doc.lines[i - 1] != wanted:
            problems.append(f"{where}:{i + 1}: heading {number} needs {wanted} on the line before")
    seen: dict[str, int] = {}
    for i, anchor in doc.anchors:
        if anchor in seen:
            problems.append(f"{where}:{i + 1}: anchor {anchor!r} repeats line {seen[anchor] + 1}")
        seen.setdefault(anchor, i)
        following = doc.lines[i + 1] if i + 1 < len(doc.lines) else ""
        m = HEADING.match(following)
        if anchor.startswith("s") and (m is None or f"s{m.group(1)}" != anchor):
            problems.append(f"{where}:{i + 1}: anchor {anchor!r} is not followed by its heading")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_links_resolve(path: Path):
    """Relative links point at files that exist; a fragment into a document of docs/ names one
    of its explicit anchors (never a renderer's generated slug, which changes with the title)."""
    doc = read_doc(path)
    where = rel(path)
    problems = []
    for i, line in doc.prose:
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not dest.exists():
                problems.append(f"{where}:{i + 1}: link to missing {file_part}")
                continue
            if fragment and dest.suffix == ".md" and dest.parent == DOCS.resolve():
                if fragment not in read_doc(dest).anchor_ids:
                    problems.append(f"{where}:{i + 1}: {target} names no anchor of {dest.name}")
    assert not problems, "\n".join(problems)


# --- citations in the project ---------------------------------------------------------------

NUMBER = r"\d+(?:\.\d+)*"
#: Blanks between words, possibly a line break followed by a comment leader.
GAP = r"(?:[ \t]|\n[ \t]*(?:#+[ \t]?)?)+"
NAME = re.compile(rf"(?<![\w-])({'|'.join(map(re.escape, CITABLE))})\.md")
#: What may follow the name: "#s4.3", or [","] ["section(s)"] and the first item.
FIRST = re.compile(rf"`?(?:#s(?P<anchor>{NUMBER})\b|,?{GAP}(?:sections?{GAP})?(?=\d))")
#: One item: a number, a range ("12-16", "9.4–9.5") or alternatives ("4.1/4.3", "3.3 / 3.4").
ITEM = re.compile(rf"{NUMBER}(?:[ \t]*[-–/][ \t]*{NUMBER})*")
#: A short note after an item: "2 (AIDs)", "4.3 (VERIFY)".
NOTE = re.compile(r"[ \t]*\([^()\n]*\)")
#: Before a further item of the same list: ", " or " and " / " or ", maybe with "section(s)".
NEXT = re.compile(rf"(?:,|[ \t]+and\b|[ \t]+or\b){GAP}(?:sections?{GAP})?(?=\d)")
#: A further item that is a bare integer must end here, or "2.2, 15 bytes" would cite 15.
ENDS = re.compile(r"[ \t]*(?:[,;:)\]\n]|\.(?!\d)|\(|and\b|or\b|$)")


def parse_items(text: str, start: int) -> list[tuple[int, str]]:
    """The cited items after a document name that ends at ``start``: (offset, item text)."""
    first = FIRST.match(text, start)
    if first is None:
        return []
    if first.group("anchor"):
        return [(first.start("anchor"), first.group("anchor"))]
    items = []
    pos = first.end()
    while True:
        item = ITEM.match(text, pos)
        if item is None:
            break
        if items and "." not in item.group() and not ENDS.match(text, item.end()):
            break
        items.append((item.start(), item.group()))
        pos = item.end()
        if note := NOTE.match(text, pos):
            pos = note.end()
        follow = NEXT.match(text, pos)
        if follow is None:
            break
        pos = follow.end()
    return items


def expand(item: str) -> list[str]:
    """Section numbers an item names; a range between siblings names every section in it."""
    numbers: list[str] = []
    for alternative in re.split(r"[ \t]*/[ \t]*", item):
        ends = re.split(r"[ \t]*[-–][ \t]*", alternative)
        lo, hi = ends[0], ends[-1]
        lo_parts, hi_parts = lo.split("."), hi.split(".")
        if len(ends) == 2 and len(lo_parts) == len(hi_parts) and lo_parts[:-1] == hi_parts[:-1]:
            prefix = ".".join(lo_parts[:-1])
            for n in range(int(lo_parts[-1]), int(hi_parts[-1]) + 1):
                numbers.append(f"{prefix}.{n}" if prefix else str(n))
        else:
            numbers.extend(ends)
    return numbers


@dataclass(frozen=True)
class Citation:
    where: str  # "path:line" or "path:cell N:line"
    document: str
    section: str
    text: str


def citations_in(text: str, where) -> list[Citation]:
    """Citations in ``text``; ``where(offset)`` says where an offset of the text is."""
    found = []
    for name in NAME.finditer(text):
        for offset, item in parse_items(text, name.end()):
            for section in expand(item):
                found.append(Citation(where(offset), name.group(1), section, item))
    return found


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def project_citations() -> list[Citation]:
    files = [ROOT / "README.md"]
    for folder in ("workbench", "tests", "benchmarks", "tools"):
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = rel(path)
        found.extend(citations_in(text, lambda o, t=text, n=name: f"{n}:{line_of(t, o)}"))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            name = f"{rel(path)}:cell {index}"
            found.extend(citations_in(text, lambda o, t=text, n=name: f"{n}:{line_of(t, o)}"))
    return found


def test_citation_parser_reads_the_forms_in_use():
    def parse(text: str) -> list[tuple[str, str]]:
        return [(c.document, c.section) for c in citations_in(text, str)]

    assert parse("(jpki-card.md 4.3)") == [("jpki-card", "4.3")]
    assert parse("jpki-card.md section 6.") == [("jpki-card", "6")]
    assert parse("smartphone-service.md, section 11 (revocation)") == [("smartphone-service", "11")]
    assert parse("jpki-card.md sections 2 (AIDs), 3 (file maps), 7 (ATRs) and 8 (tokens).") == [
        ("jpki-card", "2"),
        ("jpki-card", "3"),
        ("jpki-card", "7"),
        ("jpki-card", "8"),
    ]
    assert parse("(nfc-timing.md 12-16)") == [("nfc-timing", str(n)) for n in range(12, 17)]
    assert parse("(jpki-card.md 9.4–9.6)") == [
        ("jpki-card", "9.4"),
        ("jpki-card", "9.5"),
        ("jpki-card", "9.6"),
    ]
    assert parse("jpki-card.md 4.1/4.3 and 3.3 / 3.4") == [
        ("jpki-card", "4.1"),
        ("jpki-card", "4.3"),
        ("jpki-card", "3.3"),
        ("jpki-card", "3.4"),
    ]
    assert parse("(jpki-card.md 3.3, 3.5,\n    # 4.5, 4.6)") == [
        ("jpki-card", "3.3"),
        ("jpki-card", "3.5"),
        ("jpki-card", "4.5"),
        ("jpki-card", "4.6"),
    ]
    assert parse("the card (jpki-card.md\n    section 5), but") == [("jpki-card", "5")]
    assert parse("[VERIFY](docs/jpki-card.md#s4.3)") == [("jpki-card", "4.3")]
    assert parse("docs/testing.md 2") == [("testing", "2")]
    # not citations of a section, or not of these documents
    assert parse("(jpki-card.md 2.2, 15 bytes)") == [("jpki-card", "2.2")]
    assert parse("(jpki-card.md 4.5: 57 bytes)") == [("jpki-card", "4.5")]
    assert parse("(jpki-card.md 3.3 EF 0004/0006)") == [("jpki-card", "3.3")]
    assert parse("see jpki-card.md; nfc-timing.md (106 kbit/s)") == []
    assert parse("notebook-testing.md section 2, CONVENTIONS.md 3") == []


def test_citations_name_existing_sections():
    sections = {
        name: read_doc(DOCS / f"{name}.md").sections
        for name in CITABLE
        if (DOCS / f"{name}.md").is_file()
    }
    found = project_citations()
    assert len(found) > 100, "the citation parser found almost nothing: is it broken?"
    bad = [
        f"{c.where}: {c.document}.md {c.text} names section {c.section}, "
        f"which docs/{c.document}.md does not have"
        for c in found
        if c.section not in sections.get(c.document, set())
    ]
    assert not bad, "\n".join(bad)


# --- no reference material outside the repository ------------------------------------------

#: Built from pieces so that this file does not contain them itself.
OUTSIDE = (".." + "/shared", "shared" + "/spec", "shared" + "/guides")
SCANNED = (
    "workbench",
    "notebooks",
    "docs",
    "tests",
    "tools",
    "benchmarks",
    "README.md",
    "Makefile",
)


def project_files() -> list[Path]:
    files = []
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
            )
    return files


def test_no_reference_outside_the_repository():
    bad = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data
        for number, line in enumerate(text.splitlines(), 1):
            hit = next((s for s in OUTSIDE if s in line), None)
            if hit:
                bad.append(f"{rel(path)}:{number}: {hit!r} in {line.strip()[:100]}")
    assert not bad, "point at docs/ instead:\n" + "\n".join(bad)


def test_generated_docs_are_current() -> None:
    """docs/card-files.md is the card's file tables, regenerated by ``make docs``."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "tools/make_docs.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
