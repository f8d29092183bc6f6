"""The docs stay true: every `gvr ...` command line quoted in README.md and docs/*.md parses with the CLI's own
parser (nothing runs), and their links, module paths and file paths point at something that exists.

Commands are taken from the fenced shell blocks (```bash, ```sh or a bare ```): lines ending in a backslash are
joined, trailing ``# comments`` dropped, a line split at ``&&``, ``||``, ``;`` and ``|``, and every part that
starts with ``gvr`` or ``.venv/bin/gvr`` (or ``srun`` of one, or ``-m gvr.cli``) is a command. Placeholders
(``INPUT.mp4``, ``CKPT``) are parsed as they are: parsing opens no file.

How each is parsed, without running it:

- a user verb of `gvr.cli.VERBS`: the ``parse_args`` of its module's ``parser()`` (every argparse verb has one);
- the LightningCLI verbs (``gvr distill``, ``gvr base fit``) and the Lightning subcommands (``gvr fit``,
  ``validate``, ``test``, ``predict``): ``gvr.cli.main([..., "--print_config"])`` from the repository root, so
  that configs resolve; LightningCLI prints the parsed config and exits 0 before it builds anything.
"""

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest

from gvr.cli import VERBS, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
GVR = {"gvr", ".venv/bin/gvr"}
SEPARATORS = {"&&", "||", ";", "|", "&"}
LIGHTNING_VERBS = {"distill", "base"}  # user verbs that are a LightningCLI (gvr.commands.distill, gvr.commands.base)


def _doc_name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_lines(text: str, shell_only: bool = True):
    """(line number, line) of every line inside a fenced code block (of a shell block when ``shell_only``)."""
    fence, lang = None, ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence, lang = stripped[:3], stripped[3:].strip().lower()
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is not None and (not shell_only or lang in SHELL_FENCES):
            yield number, line


def logical_lines(lines):
    """Join lines that end in a backslash: (number of the first line, joined line)."""
    start, parts = None, []
    for number, line in lines:
        start = number if start is None else start
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(p.strip() for p in parts)
        start, parts = None, []
    if parts:
        yield start, " ".join(p.strip() for p in parts)


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment: an unquoted ``#`` at the start of a word."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def split_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line, as words."""
    lexer = shlex.shlex(strip_comment(line), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, ""
    commands = [[]]
    for word in lexer:
        if word in SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def gvr_argv(words: list[str]) -> list[str] | None:
    """The arguments of ``gvr`` in one simple command, or None when it is not a gvr command."""
    if words[0] == "srun":
        words = words[1:]
    if words and words[0] in GVR:
        return words[1:]
    for i in range(len(words) - 1):  # python -m gvr.cli ..., torchrun ... -m gvr.cli ...
        if words[i] == "-m" and words[i + 1] == "gvr.cli":
            return words[i + 2:]
    return None


def doc_commands():
    """(doc file, line number, quoted line, gvr arguments) of every gvr command in the docs."""
    found = []
    for path in DOCS:
        for number, line in logical_lines(fenced_lines(path.read_text())):
            for words in split_commands(line):
                argv = gvr_argv(words)
                if argv is not None:
                    found.append((_doc_name(path), number, line.strip(), argv))
    return found


COMMANDS = doc_commands()


def parse(argv: list[str], monkeypatch) -> str | None:
    """Parse ``gvr ARGV`` with the CLI's own parser, run nothing; None, or why the parser refused it."""
    verb = argv[0] if argv else None
    if verb in VERBS and verb not in LIGHTNING_VERBS:
        module = importlib.import_module(VERBS[verb][0])
        try:
            module.parser().parse_args(argv[1:])
            return None
        except SystemExit as exit_info:
            return f"gvr {verb} refused it (exit {exit_info.code})"
    monkeypatch.setattr(sys, "argv", ["gvr"])  # LightningCLI reads only ``args``, not pytest's command line
    try:
        main([*argv, "--print_config"])  # LightningCLI: print the parsed config, exit 0 before building anything
    except SystemExit as exit_info:
        return None if exit_info.code == 0 else f"LightningCLI refused it (exit {exit_info.code})"
    return "LightningCLI did not exit after --print_config"


@pytest.mark.parametrize(("doc", "line", "quoted", "argv"), COMMANDS, ids=[f"{d}:{n}" for d, n, _, _ in COMMANDS])
def test_quoted_gvr_command_parses(doc, line, quoted, argv, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # configs/... resolve as they do for a reader in the repository root
    refused = parse(argv, monkeypatch)
    if refused:
        stderr = capsys.readouterr().err.strip().splitlines()
        pytest.fail(f"{doc}:{line}: {quoted}\n{refused}\n" + "\n".join(stderr[-12:]), pytrace=False)


def test_the_docs_quote_commands():
    docs = {d for d, _, _, _ in COMMANDS}
    assert "README.md" in docs and len(COMMANDS) >= 20, COMMANDS
    verbs = {argv[0] for _, _, _, argv in COMMANDS if argv}
    assert {"fit", "upscale", "score", "distill"} <= verbs, verbs


@pytest.mark.parametrize("argv", [
    ["fit", "--config", "configs/stage1.yaml", "--model.no_such_option", "1"],  # LightningCLI
    ["distill", "--config", "configs/distill.yaml", "--model.no_such_option", "1"],  # a LightningCLI verb
    ["upscale", "IN.mp4", "--ckpt", "CKPT", "--output", "OUT.mp4", "--no-such-option"],  # a parser builder
    ["degrade", "IN.mp4", "--kind", "flow", "--output", "OUT.mkv", "--no-such-option"],  # parsed inside main
], ids=["fit", "distill", "upscale", "degrade"])
def test_an_unknown_option_fails_to_parse(argv, monkeypatch, capsys):
    """The check can fail: each kind of parser refuses an option it does not know."""
    monkeypatch.chdir(ROOT)
    assert parse(argv, monkeypatch) is not None
    assert "no_such_option" in capsys.readouterr().err.replace("-", "_")


def test_shell_lines_are_split_as_a_shell_would():
    line = ("make install data && .venv/bin/gvr fit --config c.yaml --trainer.callbacks+=a.B "
            "--x '[a.mp4, b.mp4]' --p \"a # b\"   # the comment")
    assert split_commands(line) == [["make", "install", "data"],
                                    [".venv/bin/gvr", "fit", "--config", "c.yaml", "--trainer.callbacks+=a.B",
                                     "--x", "[a.mp4, b.mp4]", "--p", "a # b"]]
    assert gvr_argv(["srun", ".venv/bin/gvr", "fit"]) == ["fit"]
    assert gvr_argv(["torchrun", "--nnodes", "2", "-m", "gvr.cli", "fit"]) == ["fit"]
    assert gvr_argv(["make", "base"]) is None
    joined = list(logical_lines([(3, "gvr fit --a 1 \\"), (4, "    --b 2"), (5, "gvr test")]))
    assert joined == [(3, "gvr fit --a 1 --b 2"), (5, "gvr test")]


# --- links, module paths and file paths quoted in the docs -------------------------------------------------------

def _prose(text: str) -> str:
    """``text`` with its fenced code blocks blanked (line numbers kept)."""
    lines = text.splitlines()
    for number, _ in fenced_lines(text, shell_only=False):
        lines[number - 1] = ""
    return "\n".join(lines)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} +(.+)$", _prose(path.read_text()), re.MULTILINE)}


def _links():
    for path in DOCS:
        for number, line in enumerate(_prose(path.read_text()).splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if not re.match(r"[a-z]+:", target):
                    yield _doc_name(path), number, target


LINKS = list(_links())


@pytest.mark.parametrize(("doc", "line", "target"), LINKS, ids=[f"{d}:{n}:{t}" for d, n, t in LINKS])
def test_relative_link_resolves(doc, line, target):
    file, _, anchor = target.partition("#")
    path = ((ROOT / doc).parent / file).resolve() if file else ROOT / doc
    if not path.exists():
        pytest.fail(f"{doc}:{line}: {target}: no file {path}", pytrace=False)
    if anchor and anchor not in _anchors(path):
        pytest.fail(f"{doc}:{line}: {target}: no heading with anchor #{anchor} in {file or doc}", pytrace=False)


def _quoted(pattern: str):
    """(doc, line, match) of the first place each match of ``pattern`` is quoted in the docs (code blocks included)."""
    found = {}
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(pattern, line):
                found.setdefault(name, (_doc_name(path), number, name))
    return sorted(found.values())


DOTTED = _quoted(r"(?<![\w./])(gvr(?:\.\w+)+)")
FILES = _quoted(r"(?<![\w./])((?:gvr|configs|benchmarks|data_prep|tests)/[\w./]*\w)(?![\w{*])")


@pytest.mark.parametrize(("doc", "line", "name"), DOTTED, ids=[f"{d}:{n}:{m}" for d, n, m in DOTTED])
def test_quoted_module_path_resolves(doc, line, name):
    """``gvr.a.b.Name`` in the docs names a module, or an attribute of one (``gvr.base.BaseModel.velocity``)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            if err.name != ".".join(parts[:cut]) and not ".".join(parts[:cut]).startswith(f"{err.name}."):
                raise  # the module exists but imports something missing
            continue
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                pytest.fail(f"{doc}:{line}: {name}: {getattr(target, '__name__', target)} has no {attr}", pytrace=False)
            target = getattr(target, attr)
        return
    pytest.fail(f"{doc}:{line}: {name}: no such module", pytrace=False)


@pytest.mark.parametrize(("doc", "line", "name"), FILES, ids=[f"{d}:{n}:{m}" for d, n, m in FILES])
def test_quoted_file_path_exists(doc, line, name):
    if not (ROOT / name).exists():
        pytest.fail(f"{doc}:{line}: {name} does not exist", pytrace=False)


@pytest.mark.parametrize("verb", sorted(set(VERBS) - LIGHTNING_VERBS))
def test_every_argparse_verb_has_a_parser_builder(verb):
    """`parser()` builds the verb's argparse parser without running anything, so the docs test can parse it."""
    assert importlib.import_module(VERBS[verb][0]).parser().prog == f"gvr {verb}"
