"""The repository's documentation stands alone: no markdown file points outside it."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", ".git", "node_modules", ".run"}

# a relative path climbing out of its folder: `../x`, (../x), "../x", ../x at a line start
UPWARD = re.compile(r"(?<![\w./:-])((?:\.\./)+[^\s)`'\"\]>]*)")


def markdown_files():
    """The repository's markdown files: tracked ones and new ones not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z",
             "*.md", "**/*.md"],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout
        files = {ROOT / name for name in listed.split("\0") if name}
    except (OSError, subprocess.CalledProcessError):         # no git: walk the tree
        files = {path for path in ROOT.rglob("*.md")
                 if not SKIPPED & set(path.relative_to(ROOT).parts)}
    return sorted(path for path in files if path.is_file())


def outside_links(path, root=ROOT):
    """(line number, target) for each upward relative path in ``path`` that leaves
    ``root`` or names nothing in it (``../shared/X`` written for a sibling folder)."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for target in UPWARD.findall(line):
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(root) or not resolved.exists():
                found.append((number, target))
    return found


MARKDOWN_NAME = re.compile(r"(?<![\w./:-])([\w./-]*\w\.md)\b")     # not inside a URL


def missing_pages(path, files, root=ROOT):
    """Markdown files ``path`` names (``CONTRACT.md``, ``docs/rpc.md``) that the
    repository does not have: a page of some other project."""
    names = {file.name for file in files}
    missing = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for name in MARKDOWN_NAME.findall(line):
            if not ((path.parent / name).exists() or (root / name).exists() or name in names):
                missing.append((number, name))
    return missing


def test_no_markdown_file_links_outside_the_repository():
    files = markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "rpc.md" in files
    outside = {str(path.relative_to(ROOT)): links for path in files
               if (links := outside_links(path))}
    assert outside == {}, f"links leaving the repository (say it here instead): {outside}"
    missing = {str(path.relative_to(ROOT)): names for path in files
               if (names := missing_pages(path, files))}
    assert missing == {}, f"pages named that the repository does not have: {missing}"


def test_the_check_sees_an_outside_link(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    (tmp_path / "README.md").write_text("# the project\n")
    page.write_text("see [the rules](../../shared/CONTRACT.md) and `../../shared/seed/`,\n"
                    "the contract in `../shared/CONTRACT.md` (no such file here),\n"
                    "not [the readme](../README.md#the-project) nor https://example.com/a/../b\n")
    assert outside_links(page, root=tmp_path) == [
        (1, "../../shared/CONTRACT.md"), (1, "../../shared/seed/"), (2, "../shared/CONTRACT.md")]


def test_the_check_sees_a_page_of_another_project(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("the names in CONTRACT.md stay; see docs/page.md and page.md,\n"
                    "not https://example.com/guide/INSTALL.md\n")
    files = [page]
    assert missing_pages(page, files, root=tmp_path) == [(1, "CONTRACT.md")]


# The team's handbook outside the repository: its files, its sections ("§4"), its folder.
OUTSIDE_HANDBOOK = re.compile(r"DESIGN\.md|CONTRACT\.md|\.\./shared/|§ ?[0-9]")
SOURCE_SUFFIXES = {".py", ".yml", ".yaml", ".toml", ".sh", ".cfg", ".ini", ".html", ".js",
                   ".json", ".conf", ".txt"}


def source_files():
    """The repository's own code and configuration (tracked or new), vendored files left out."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return sorted(
        path for name in listed.split("\0") if name
        if (path := ROOT / name).is_file() and "vendor" not in path.parts
        and (path.suffix in SOURCE_SUFFIXES or path.name in ("Dockerfile", "Makefile")))


def handbook_pointers(path):
    """(line number, what) for each pointer of ``path`` into the handbook outside."""
    return [(number, match.group()) for number, line in
            enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
            for match in OUTSIDE_HANDBOOK.finditer(line)]


def test_no_comment_or_docstring_points_to_the_handbook_outside_the_repository():
    files = source_files()
    assert ROOT / "shared" / "envelope.py" in files and ROOT / "Makefile" in files
    pointers = {str(path.relative_to(ROOT)): found for path in files
                if path != Path(__file__) and (found := handbook_pointers(path))}
    assert pointers == {}, f"say it here instead of pointing outside: {pointers}"


def test_the_check_sees_a_pointer_to_the_handbook(tmp_path):
    code = tmp_path / "code.py"
    code.write_text('# see DESIGN.md §4 and ../shared/seed\nCHARS = "ÄÖÑÜ§¿"\n')
    assert handbook_pointers(code) == [(1, "DESIGN.md"), (1, "§4"), (1, "../shared/")]
