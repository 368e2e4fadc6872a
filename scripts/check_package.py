"""Build Taskmill's wheel and sdist, check what they hold (every file git tracks under
taskmill/, templates and static files included), then install the wheel into a clean
virtualenv and run the example project's worker from it: a task enqueued there must succeed.

    .venv/bin/python scripts/check_package.py      (make package-check; a stage of scripts/test)

The virtualenv has no access to the repository: the example project is copied out, nothing is
installed editable, and the check fails if `taskmill` is imported from anywhere but the
virtualenv. Dependencies come from the package index through pip's cache, so a second run
takes a few seconds plus the build. Exits non-zero, saying what is wrong, on the first failure.
"""

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Final, TextIO

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
STEP_TIMEOUT: Final = 300.0

# What a release must carry; names inside the wheel, and inside the sdist below its top folder.
WHEEL_FILES: Final = (
    "taskmill/__init__.py",
    "taskmill/py.typed",
    "taskmill/migrations/0001_initial.py",
    "taskmill/management/commands/taskmill.py",
)
SDIST_FILES: Final = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "taskmill/py.typed")
CLASSIFIERS: Final = (
    "Framework :: Django :: 6.0",
    "Framework :: Django :: 6.1",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
)

ENQUEUE: Final = """
import sys, taskmill
from shop.tasks import add
assert taskmill.__file__.startswith(sys.prefix), f"taskmill imported from {taskmill.__file__}"
print(add.enqueue(20, 22).id)
"""
CHECK: Final = """
from django.tasks import default_task_backend
result = default_task_backend.get_result({task_id!r})
assert result.status == "SUCCESSFUL", (result.status, result.errors)
assert result.return_value == 42, result.return_value
print(f"task {{result.id}}: {{result.status}}, returned {{result.return_value}}")
"""


def say(text: str, stream: TextIO = sys.stdout) -> None:
    stream.write(text + "\n")
    stream.flush()


class CheckFailed(Exception):
    """The package is not what a release needs; the message says what."""


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; return its stdout, or raise CheckFailed with its output."""
    say("+ " + " ".join(command))
    done = subprocess.run(  # noqa: S603 - fixed commands, no shell
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise CheckFailed(f"exit status {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build(out: Path) -> tuple[Path, Path]:
    run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)], cwd=REPO_ROOT)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise CheckFailed(f"expected one wheel and one sdist in {out}, found {wheels + sdists}")
    return wheels[0], sdists[0]


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    tracked = run(["git", "ls-files", "taskmill"], cwd=REPO_ROOT).split()
    missing = [name for name in (*WHEEL_FILES, *tracked) if name not in names]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        missing.append("*.dist-info/licenses/LICENSE")
    strays = sorted(n for n in names if n.split("/")[0] in {"tests", "example", "bench", "docs"})
    if missing or strays:
        raise CheckFailed(f"{wheel.name}: missing {missing}, should not hold {strays[:5]}")
    classifiers = metadata.get_all("Classifier") or []
    problems = [f"no classifier {c!r}" for c in CLASSIFIERS if c not in classifiers]
    if metadata["License-Expression"] != "MIT":
        problems.append(f"License-Expression is {metadata['License-Expression']!r}, not 'MIT'")
    if metadata["Name"] != "django-taskmill" or not metadata["Requires-Python"]:
        problems.append(
            f"Name {metadata['Name']!r}, Requires-Python {metadata['Requires-Python']!r}"
        )
    if problems:
        raise CheckFailed(f"{wheel.name} metadata: " + "; ".join(problems))
    say(f"{wheel.name}: {len(names)} files, metadata and classifiers as expected")


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [name for name in SDIST_FILES if name not in names]
    if missing:
        raise CheckFailed(f"{sdist.name}: missing {missing}")
    say(f"{sdist.name}: {len(names)} files, as expected")


def run_example_worker(wheel: Path, work: Path) -> None:
    """Install the wheel into a new virtualenv and drain one task with the example's worker."""
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    python = str(venv / "bin" / "python")
    run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        cwd=work,
    )
    project = work / "example"
    shutil.copytree(
        REPO_ROOT / "example",
        project,
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"),
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO", "VIRTUAL_ENV"))
    }
    env["TASKMILL_EXAMPLE_DB"] = str(work / "example.sqlite3")
    manage = [python, "manage.py"]
    run([*manage, "migrate", "--noinput", "-v", "0"], cwd=project, env=env)
    task_id = run([*manage, "shell", "-v", "0", "-c", ENQUEUE], cwd=project, env=env).strip()
    run([*manage, "taskmill", "worker", "--burst", "--concurrency", "1"], cwd=project, env=env)
    check = CHECK.format(task_id=task_id)
    say(run([*manage, "shell", "-v", "0", "-c", check], cwd=project, env=env).strip())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="taskmill-package-") as tmp:
        work = Path(tmp)
        try:
            wheel, sdist = build(work / "dist")
            check_wheel(wheel)
            check_sdist(sdist)
            run_example_worker(wheel, work)
        except (CheckFailed, subprocess.TimeoutExpired) as error:
            say(f"check_package: FAILED: {error}", sys.stderr)
            return 1
    say("check_package: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
