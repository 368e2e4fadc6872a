"""Run every ```python example of README.md and docs/ against the test database, so the docs
can't rot.

One test per page. A page's blocks run top to bottom in one namespace, as a reader would type
them into `manage.py shell`. An HTML comment (invisible once rendered) on the line right before
a block changes how it runs:

    <!-- no-test -->              not run: it needs a shell, another process or another server
    <!-- module: myapp.tasks -->  run as the module myapp.tasks, importable while the page runs,
                                  so the tasks it defines resolve by path as in a real app
    <!-- settings -->             an excerpt of a settings file (BASE_DIR is defined): run on
                                  its own, then its TASKMILL, TASKS, DATABASE_ROUTERS and
                                  INSTALLED_APPS are checked the way Taskmill checks them
    <!-- requires-django: 6.1 --> run only on this Django version or newer

and, on a line of its own anywhere on a page:

    <!-- test-exec: CODE -->      one line of Python run at that point in the page's namespace,
                                  standing in for the shell step shown next to it (a worker
                                  is `run_until_empty()`)

Only blocks tagged `python` run; a block tagged `py` or `python3` is an error, so no example is
left out by a typo.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import django
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from django.utils.module_loading import import_string

from taskmill.backend import DatabaseBackend, backend_problems
from taskmill.conf import build_settings
from taskmill.schedules import registry

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PAGES: Final = sorted(
    [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")],
    key=lambda path: path.relative_to(REPO_ROOT).as_posix(),
)

FENCE: Final = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")
DIRECTIVE: Final = re.compile(
    r"^[ \t]*<!--[ \t]*(?P<name>no-test|module|settings|requires-django|test-exec)"
    r"[ \t]*(?::[ \t]*(?P<value>.*?))?[ \t]*-->[ \t]*$"
)
MISTAGGED: Final = frozenset({"py", "python3", "py3"})
BACKEND: Final = "taskmill.backend.DatabaseBackend"

type StepKind = Literal["python", "module", "settings", "exec"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One thing to run on a page: a code block, or a test-exec line."""

    line: int  # 1-based line of the first line of code in the page
    source: str
    kind: StepKind
    module: str | None = None
    django_version: tuple[int, ...] | None = None


class PageError(Exception):
    """A page's examples are malformed (a stray directive, a mistagged block)."""


def _where(page: Path, line: int) -> str:
    shown = page.relative_to(REPO_ROOT) if page.is_relative_to(REPO_ROOT) else page
    return f"{shown.as_posix()}:{line}"


def _block_step(
    page: Path, line: int, source: str, directives: list[tuple[str, str | None]]
) -> Step | None:
    names = [name for name, _ in directives]
    if "no-test" in names:
        return None
    kind: StepKind = "python"
    module: str | None = None
    version: tuple[int, ...] | None = None
    for name, value in directives:
        if name == "module":
            if not value or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", value):
                raise PageError(f"{_where(page, line)}: give a dotted module name: {value!r}")
            kind, module = "module", value
        elif name == "settings":
            kind = "settings"
        elif name == "requires-django":
            if not value or not re.fullmatch(r"\d+(\.\d+)*", value):
                raise PageError(f"{_where(page, line)}: give a version, e.g. 6.1: {value!r}")
            version = tuple(int(part) for part in value.split("."))
    if names.count("module") + names.count("settings") > 1:
        raise PageError(f"{_where(page, line)}: a block is a module or settings, not both")
    return Step(line=line, source=source, kind=kind, module=module, django_version=version)


def _read_fence(
    page: Path, lines: list[str], start: int, indent: str, fence: str
) -> tuple[list[str], int]:
    """Return the block's lines (dedented) and the index of the line after its closing fence."""
    body: list[str] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            return body, index + 1
        body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        index += 1
    raise PageError(f"{_where(page, start)}: unclosed code block")


def parse_page(page: Path) -> list[Step]:
    """Return the steps of a page in order; raise PageError if its directives are malformed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    steps: list[Step] = []
    pending: list[tuple[str, str | None]] = []
    pending_line = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = DIRECTIVE.match(line)
        fence = FENCE.match(line)
        if directive is not None and directive["name"] == "test-exec":
            code = directive["value"] or ""
            if not code:
                raise PageError(f"{_where(page, index + 1)}: test-exec needs code")
            steps.append(Step(line=index + 1, source=code, kind="exec"))
        elif directive is not None:
            pending.append((directive["name"], directive["value"]))
            pending_line = index + 1
        elif fence is not None:
            info = fence["info"].lower()
            body, after = _read_fence(page, lines, index + 1, fence["indent"], fence["fence"])
            if info in MISTAGGED:
                raise PageError(f"{_where(page, index + 1)}: tag Python blocks `python`")
            if pending and info != "python":
                raise PageError(
                    f"{_where(page, pending_line)}: directive before a {info or 'plain'} block"
                )
            if info == "python":
                step = _block_step(page, index + 2, "\n".join(body) + "\n", pending)
                if step is not None:
                    steps.append(step)
            pending = []
            index = after
            continue
        elif pending and line.strip():
            raise PageError(f"{_where(page, pending_line)}: directive not followed by a block")
        index += 1
    if pending:
        raise PageError(f"{_where(page, pending_line)}: directive not followed by a block")
    return steps


def _compile(page: Path, step: Step) -> types.CodeType:
    # Padded with newlines so tracebacks point at the example's lines in the Markdown file.
    return compile("\n" * (step.line - 1) + step.source, str(page), "exec")


@contextmanager
def page_modules() -> Iterator[dict[str, types.ModuleType]]:
    """Collect the modules a page defines; remove them from sys.modules afterwards."""
    made: dict[str, types.ModuleType] = {}
    # Schedules a page declares with @periodic/@cron are forgotten with its modules.
    try:
        with registry.isolated():
            yield made
    finally:
        for name in made:
            sys.modules.pop(name, None)


def _make_module(name: str, page: Path, made: dict[str, types.ModuleType]) -> types.ModuleType:
    top = name.split(".")[0]
    if top not in made and (top in sys.modules or importlib.util.find_spec(top) is not None):
        raise PageError(f"{name}: {top!r} is a real module; name the example's module otherwise")
    parts = name.split(".")
    parent: types.ModuleType | None = None
    for depth in range(1, len(parts) + 1):
        dotted = ".".join(parts[:depth])
        module = made.get(dotted)
        if module is None:
            module = types.ModuleType(dotted)
            module.__file__ = str(page)
            if depth < len(parts):
                module.__path__ = []
            made[dotted] = sys.modules[dotted] = module
        if parent is not None:
            setattr(parent, parts[depth - 1], module)
        parent = module
    assert parent is not None
    return parent


def check_settings(namespace: dict[str, Any]) -> None:
    """Check a settings example as Taskmill would: TASKMILL, each TASKS entry, the routers."""
    if "TASKMILL" in namespace:
        build_settings(namespace["TASKMILL"])
    databases = namespace.get("DATABASES")
    for alias, params in namespace.get("TASKS", {}).items():
        backend = import_string(params["BACKEND"])
        if not (isinstance(backend, type) and issubclass(backend, DatabaseBackend)):
            continue
        options = dict(params.get("OPTIONS", {}))
        database = options.get("DATABASE")
        # The example's own DATABASES names the alias, not the test settings.
        if isinstance(databases, dict) and database is not None:
            assert database in databases, f"OPTIONS['DATABASE'] {database!r} not in DATABASES"
            options["DATABASE"] = DEFAULT_DB_ALIAS
        problems = backend_problems(alias, {**params, "OPTIONS": options})
        assert not problems, problems
    for path in namespace.get("DATABASE_ROUTERS", []):
        import_string(path)
    if "INSTALLED_APPS" in namespace:
        assert "taskmill" in namespace["INSTALLED_APPS"], "INSTALLED_APPS lacks 'taskmill'"


def run_step(
    page: Path, step: Step, namespace: dict[str, Any], made: dict[str, types.ModuleType]
) -> None:
    if step.django_version is not None and django.VERSION[: len(step.django_version)] < (
        step.django_version
    ):
        return
    code = _compile(page, step)
    if step.kind == "module":
        assert step.module is not None
        exec(code, _make_module(step.module, page, made).__dict__)  # noqa: S102 - the example
    elif step.kind == "settings":
        # An excerpt of a settings file: BASE_DIR is defined at the top of every new project's.
        settings_namespace: dict[str, Any] = {
            "__name__": "docs_example_settings",
            "BASE_DIR": Path("/srv/mysite"),
        }
        exec(code, settings_namespace)  # noqa: S102 - the example
        check_settings(settings_namespace)
    else:
        exec(code, namespace)  # noqa: S102 - the example


def _page_id(page: Path) -> str:
    return page.relative_to(REPO_ROOT).as_posix()


def test_docs_pages_exist() -> None:
    assert (REPO_ROOT / "README.md") in PAGES
    assert len(PAGES) > 1, "docs/ holds no Markdown page"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_directives_are_well_formed(page: Path) -> None:
    parse_page(page)


def _has_examples(page: Path) -> bool:
    try:
        return any(step.kind != "exec" for step in parse_page(page))
    except PageError:
        return True  # test_page_examples_run reports it


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", [page for page in PAGES if _has_examples(page)], ids=_page_id)
def test_page_examples_run(page: Path) -> None:
    steps = parse_page(page)
    namespace: dict[str, Any] = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    with page_modules() as made:
        for step in steps:
            run_step(page, step, namespace, made)


def test_parse_page__reads_directives_blocks_and_exec_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text\n\n"
        "<!-- module: shop.tasks -->\n```python\nX = 1\n```\n\n"
        "<!-- no-test -->\n```python\nraise SystemExit\n```\n\n"
        "```bash\nls\n```\n\n"
        "<!-- test-exec: y = 2 -->\n\n"
        "<!-- requires-django: 6.1 -->\n  ```python\n  z = 3\n  ```\n"
        "<!-- settings -->\n```python\nTASKS = {}\n```\n",
        encoding="utf-8",
    )
    found = parse_page(page)

    assert [(s.kind, s.line, s.source) for s in found] == [
        ("module", 5, "X = 1\n"),
        ("exec", 17, "y = 2"),
        ("python", 21, "z = 3\n"),
        ("settings", 25, "TASKS = {}\n"),
    ]
    assert found[0].module == "shop.tasks"
    assert found[2].django_version == (6, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- no-test -->\nSome text.\n```python\nx = 1\n```\n", "not followed by a block"),
        ("<!-- settings -->\n```bash\nls\n```\n", "directive before a bash block"),
        ("```py\nx = 1\n```\n", "tag Python blocks `python`"),
        ("<!-- module: tasks -->\n```python\nx = 1\n```\n", "dotted module name"),
        ("```python\nx = 1\n", "unclosed code block"),
    ],
)
def test_parse_page__malformed_pages_are_refused(tmp_path: Path, text: str, message: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")

    with pytest.raises(PageError, match=re.escape(message)):
        parse_page(page)


def test_module_directive__refuses_to_shadow_a_real_module(tmp_path: Path) -> None:
    with page_modules() as made, pytest.raises(PageError, match="'json' is a real module"):
        _make_module("json.tasks", tmp_path / "page.md", made)


def test_module_directive__module_is_importable_only_while_the_page_runs(tmp_path: Path) -> None:
    with page_modules() as made:
        module = _make_module("docs_probe.tasks", tmp_path / "page.md", made)
        assert import_string("docs_probe.tasks") is module
    assert "docs_probe.tasks" not in sys.modules
    assert "docs_probe" not in sys.modules


@pytest.mark.parametrize(
    "namespace",
    [
        {"TASKMILL": {"LEASE": 30}},
        {"TASKS": {"default": {"BACKEND": BACKEND, "OPTIONS": {"DATABSE": "queue"}}}},
        {
            "DATABASES": {"default": {}},
            "TASKS": {"default": {"BACKEND": BACKEND, "OPTIONS": {"DATABASE": "queue"}}},
        },
        {"DATABASE_ROUTERS": ["taskmill.routers.NoSuchRouter"]},
        {"INSTALLED_APPS": ["django.contrib.contenttypes"]},
    ],
)
def test_check_settings__refuses_what_taskmill_would(namespace: dict[str, Any]) -> None:
    with pytest.raises((AssertionError, ImproperlyConfigured, ImportError)):
        check_settings(namespace)
