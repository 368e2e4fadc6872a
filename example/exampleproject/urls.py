"""The example project's URLs: the admin (Taskmill's task pages and the shop), which the site's
front page leads to, and Taskmill's dashboard with its Prometheus metrics at /taskmill/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskmill/", include("taskmill.dashboard.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
