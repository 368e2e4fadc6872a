"""URLs for the test project: the admin, and the dashboard mounted as a project would."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskmill/", include("taskmill.dashboard.urls")),
]
