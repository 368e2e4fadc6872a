"""Who may open or act on each of Taskmill's URLs and admin actions: nobody, staff without
permissions, staff who may only view, and superusers.

The tables below list every URL of Taskmill's admins and dashboard and every admin action;
`test_every_url_and_action_is_in_the_permission_table` walks the URL configuration and the
admins, so a view or action added later without a row here fails the suite. Escaping and
secret masking are in test_security_escaping.py and test_security_masking.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, reverse

from taskmill.dashboard import urls as dashboard_urls
from taskmill.models import Schedule, TaskRecord, Worker
from taskmill.states import State
from tests.chaos.pages import admin_url
from tests.db import task_rows
from tests.db.rows import store_progress, write_chunk
from tests.testapp import tasks

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse  # the stubs' name for it

pytestmark = pytest.mark.django_db

type Role = Literal["anonymous", "staff", "viewer", "superuser"]
type Outcome = Literal["login", "forbidden", "ok", "done", "redirect"]

ROLES: Final[tuple[Role, ...]] = ("anonymous", "staff", "viewer", "superuser")
# Only viewers may see it: no refused answer may carry it.
SENTINEL: Final = "visible-to-viewers-only"
METRICS_TOKEN: Final = "a-metrics-token-long-enough"  # noqa: S105 - a test token
VIEW_CODENAMES: Final = ("view_taskrecord", "view_schedule", "view_worker")


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The rows every case works on."""

    ready: str  # a queued task: cancellable
    failed: str  # a failed task: retryable, deletable
    schedule: int  # an enabled schedule
    disabled: int  # a disabled schedule
    worker: str


def make_world() -> World:
    ready = tasks.echo.enqueue(note=SENTINEL)
    store_progress(ready, 1, 2, SENTINEL)
    write_chunk(ready, f"{SENTINEL}\n")
    failed = task_rows.finished(State.FAILED, error=f"ValueError: {SENTINEL}")
    schedule = Schedule.objects.create(
        name="nightly",
        task_path="tests.testapp.tasks.echo",
        kwargs={"note": SENTINEL},
        cron="0 3 * * *",
    )
    disabled = Schedule.objects.create(
        name="paused", task_path="tests.testapp.tasks.noop", cron="0 4 * * *", enabled=False
    )
    return World(
        ready=ready.id,
        failed=str(failed.id),
        schedule=schedule.pk,
        disabled=disabled.pk,
        worker=task_rows.worker(f"worker-{SENTINEL}").id,
    )


def snapshot() -> tuple[object, ...]:
    """Everything an action could change, to prove a refused one changed nothing."""
    return (
        sorted((str(pk), state) for pk, state in TaskRecord.objects.values_list("id", "state")),
        sorted(Schedule.objects.values_list("name", "enabled", "updated_at")),
        sorted(Worker.objects.values_list("id", flat=True)),
    )


class ClientFor(Protocol):
    def __call__(self, role: Role) -> Client: ...


@pytest.fixture
def client_for() -> ClientFor:
    """A client logged in as `role`: nobody, staff without permissions, staff with the view
    permission of every Taskmill model (and nothing else), or a superuser."""

    def build(role: Role) -> Client:
        client = Client()
        if role == "anonymous":
            return client
        user = User.objects.create_user(role, is_staff=True, is_superuser=role == "superuser")
        if role == "viewer":
            user.user_permissions.add(*Permission.objects.filter(codename__in=VIEW_CODENAMES))
        client.force_login(user)
        return client

    return build


# --- the tables -----------------------------------------------------------------------------

VIEWABLE: Final[dict[Role, Outcome]] = {
    "anonymous": "login",
    "staff": "forbidden",
    "viewer": "ok",
    "superuser": "ok",
}
SUPERUSER_ACTS: Final[dict[Role, Outcome]] = {
    "anonymous": "login",
    "staff": "forbidden",
    "viewer": "forbidden",
    "superuser": "done",
}
NOBODY: Final[dict[Role, Outcome]] = {
    "anonymous": "login",
    "staff": "forbidden",
    "viewer": "forbidden",
    "superuser": "forbidden",
}
# Django's admin redirects /<id>/ to /<id>/change/, which checks the permission.
REDIRECT: Final[dict[Role, Outcome]] = {
    "anonymous": "login",
    "staff": "redirect",
    "viewer": "redirect",
    "superuser": "redirect",
}


@dataclass(frozen=True, slots=True)
class UrlCase:
    """One URL of Taskmill and what each role gets from it."""

    name: str  # the URL's name, or model:pattern for Django's unnamed redirect
    url: Callable[[World], str]
    expect: dict[Role, Outcome]
    method: Literal["get", "post"] = "get"
    data: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        query = "?" + "&".join(self.data) if self.data else ""
        return f"{self.method}:{self.name}{query}"


def on_admin(name: str, row: str | None, expect: dict[Role, Outcome], **options: Any) -> UrlCase:
    """A case for admin URL `taskmill_<name>`, given the World attribute of its object."""

    def url(world: World) -> str:
        return admin_url(name, *([getattr(world, row)] if row else []))

    return UrlCase(f"admin:taskmill_{name}", url, expect, **options)


def redirect_of(model: str, row: str) -> UrlCase:
    def url(world: World) -> str:
        return f"{admin_url(f'{model}_changelist')}{getattr(world, row)}/"

    return UrlCase(f"{model}:<path:object_id>/", url, REDIRECT)


def on_dashboard(name: str, expect: dict[Role, Outcome], **options: Any) -> UrlCase:
    full = f"{dashboard_urls.app_name}:{name}"
    return UrlCase(full, lambda world: reverse(full), expect, **options)


DELETE: Final = {"method": "post", "data": {"post": "yes"}}

URL_CASES: Final = (
    # Tasks: reading needs taskmill.view_taskrecord; each button needs its own permission.
    on_admin("taskrecord_changelist", None, VIEWABLE),
    on_admin("taskrecord_add", None, NOBODY),
    on_admin("taskrecord_change", "ready", VIEWABLE),
    on_admin("taskrecord_history", "ready", VIEWABLE),
    on_admin("taskrecord_log", "ready", VIEWABLE),
    on_admin("taskrecord_cancel", "ready", SUPERUSER_ACTS, method="post"),
    on_admin("taskrecord_retry", "failed", SUPERUSER_ACTS, method="post"),
    on_admin("taskrecord_delete", "failed", SUPERUSER_ACTS, **DELETE),
    redirect_of("taskrecord", "ready"),
    # The dashboard's entry in the admin index.
    on_admin("dashboard_changelist", None, VIEWABLE),
    # Schedules: read-only fields; the actions and delete need their permissions.
    on_admin("schedule_changelist", None, VIEWABLE),
    on_admin("schedule_add", None, NOBODY),
    on_admin("schedule_change", "schedule", VIEWABLE),
    on_admin("schedule_change", "schedule", SUPERUSER_ACTS, method="post", data={"_save": "1"}),
    on_admin("schedule_history", "schedule", VIEWABLE),
    on_admin("schedule_delete", "schedule", SUPERUSER_ACTS, **DELETE),
    redirect_of("schedule", "schedule"),
    # Workers write their own rows: nobody adds, changes or deletes one.
    on_admin("worker_changelist", None, VIEWABLE),
    on_admin("worker_add", None, NOBODY),
    on_admin("worker_change", "worker", VIEWABLE),
    on_admin("worker_history", "worker", VIEWABLE),
    on_admin("worker_delete", "worker", NOBODY, **DELETE),
    redirect_of("worker", "worker"),
    # The dashboard app: staff with taskmill.view_taskrecord.
    on_dashboard("index", VIEWABLE),
    on_dashboard("index", VIEWABLE, data={"panels": "1"}),
    # Metrics answer 403, not a login page: a scraper can't log in (its token: below).
    on_dashboard("metrics", {**VIEWABLE, "anonymous": "forbidden"}),
)


@dataclass(frozen=True, slots=True)
class ActionCase:
    """One admin action, posted to its changelist; only the superuser may run it here."""

    model: str
    action: str
    row: str
    data: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.model}.{self.action}"


ACTION_CASES: Final = (
    ActionCase("taskrecord", "cancel_selected", "ready"),
    ActionCase("taskrecord", "retry_selected", "failed"),
    ActionCase("taskrecord", "delete_selected", "failed", {"post": "yes"}),
    ActionCase("schedule", "enable", "disabled"),
    ActionCase("schedule", "disable", "schedule"),
    ActionCase("schedule", "run_now", "schedule"),
    ActionCase("schedule", "delete_selected", "schedule", {"post": "yes"}),
)


def _taskmill_admins() -> list[tuple[str, admin.ModelAdmin[Any]]]:
    return [
        (model._meta.model_name or "", model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "taskmill"
    ]


def _url_names(patterns: Sequence[URLPattern | URLResolver], prefix: str, model: str) -> set[str]:
    return {
        f"{prefix}:{pattern.name}" if pattern.name else f"{model}:{pattern.pattern}"
        for pattern in patterns
        if isinstance(pattern, URLPattern)
    }


def test_every_url_and_action_is_in_the_permission_table() -> None:
    found = _url_names(dashboard_urls.urlpatterns, dashboard_urls.app_name, "dashboard")
    for model, model_admin in _taskmill_admins():
        found |= _url_names(model_admin.get_urls(), "admin", model)
    request = RequestFactory().get("/")
    request.user = User.objects.create_user("root", is_staff=True, is_superuser=True)
    actions = {
        f"{model}.{name}"
        for model, model_admin in _taskmill_admins()
        for name in model_admin.get_actions(request)
    }

    assert found == {case.name for case in URL_CASES}, "add the new URL to URL_CASES"
    assert actions == {case.id for case in ACTION_CASES}, "add the new action to ACTION_CASES"


def _check_outcome(response: _MonkeyPatchedWSGIResponse, outcome: Outcome, world: World) -> None:
    location = response.get("Location", "")
    login = reverse("admin:login")
    match outcome:
        case "login":
            assert (response.status_code, location.startswith(login)) == (302, True)
        case "forbidden":
            assert response.status_code == 403
        case "ok":
            assert response.status_code == 200
        case "done" | "redirect":
            assert (response.status_code, location.startswith(login)) == (302, False)
    if outcome in ("login", "forbidden", "redirect"):
        body = response.content.decode()
        for private in (SENTINEL, world.ready, world.failed):
            assert private not in body


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", URL_CASES, ids=lambda case: case.id)
def test_url_permissions(case: UrlCase, role: Role, client_for: ClientFor) -> None:
    world = make_world()
    client = client_for(role)
    before = snapshot()

    send = client.post if case.method == "post" else client.get
    response = send(case.url(world), case.data)

    outcome = case.expect[role]
    _check_outcome(response, outcome, world)
    if outcome != "done":
        assert snapshot() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", ACTION_CASES, ids=lambda case: case.id)
def test_action_permissions(case: ActionCase, role: Role, client_for: ClientFor) -> None:
    world = make_world()
    client = client_for(role)
    before = snapshot()

    selected = [str(getattr(world, case.row))]
    posted = {"action": case.action, "_selected_action": selected, **case.data}
    response = client.post(admin_url(f"{case.model}_changelist"), posted)

    outcome = SUPERUSER_ACTS[role]
    _check_outcome(response, outcome, world)
    if outcome == "done":
        assert snapshot() != before, "the superuser's action changed nothing"
    else:
        assert snapshot() == before


POSTS: Final = [case for case in URL_CASES if case.method == "post"]


@pytest.mark.parametrize("case", [*POSTS, *ACTION_CASES], ids=lambda case: case.id)
def test_posts__need_the_csrf_token_and_buttons_refuse_get(case: UrlCase | ActionCase) -> None:
    world = make_world()
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("root", is_staff=True, is_superuser=True))
    before = snapshot()

    posted: dict[str, str | list[str]]
    if isinstance(case, UrlCase):
        url, posted = case.url(world), dict(case.data)
    else:
        url = admin_url(f"{case.model}_changelist")
        selected = [str(getattr(world, case.row))]
        posted = {"action": case.action, "_selected_action": selected, **case.data}
    refused = client.post(url, posted)

    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    assert snapshot() == before
    if isinstance(case, UrlCase) and case.name.endswith(("_cancel", "_retry")):
        assert client.get(url).status_code == 405
        assert snapshot() == before


def test_metrics_token__lets_a_scraper_read_the_metrics_and_nothing_else(client: Client) -> None:
    metrics, index = reverse("taskmill_dashboard:metrics"), reverse("taskmill_dashboard:index")
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with override_settings(TASKMILL={"METRICS_TOKEN": METRICS_TOKEN}):
        right = client.get(metrics, headers=bearer)
        wrong = client.get(metrics, headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
        bare = client.get(metrics, headers={"Authorization": METRICS_TOKEN})
        dashboard = client.get(index, headers=bearer)
        admin_page = client.get(admin_url("taskrecord_changelist"), headers=bearer)

    assert right.status_code == 200
    assert (wrong.status_code, bare.status_code) == (403, 403)
    assert wrong["WWW-Authenticate"] == 'Bearer realm="taskmill metrics"'
    assert (dashboard.status_code, admin_page.status_code) == (302, 302)  # to the login page


def test_admin_index__lists_taskmill_to_viewers_only(client_for: ClientFor) -> None:
    index = reverse("admin:index")
    staff = client_for("staff").get(index).content.decode()
    viewer = client_for("viewer").get(index).content.decode()

    for name in ("taskrecord", "dashboard", "schedule", "worker"):
        assert admin_url(f"{name}_changelist") not in staff
        assert admin_url(f"{name}_changelist") in viewer
