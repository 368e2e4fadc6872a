"""URLs for the test project: the admin, the dashboard mounted as a project would, and a view
that enqueues, for the web servers of the autostart tests."""

from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("enqueue/<str:key>/", views.enqueue_append_to_ledger),
    path("taskmill/", include("taskmill.dashboard.urls")),
]
