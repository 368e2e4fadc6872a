"""The example project's URLs: the admin, which the site's front page leads to, and
Taskmill's dashboard and metrics."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskmill/", include("taskmill.dashboard.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
