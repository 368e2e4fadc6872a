"""URLs for the test project: the admin, so admin tests can use the test client, and a view
that enqueues, for the web servers of the autostart tests."""

from django.contrib import admin
from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("enqueue/<str:key>/", views.enqueue_append_to_ledger),
]
