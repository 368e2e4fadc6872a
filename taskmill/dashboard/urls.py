"""Mount with `path("taskmill/", include("taskmill.dashboard.urls"))`."""

from django.urls import path

from . import views
from .metrics import metrics

app_name = "taskmill_dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
    path("metrics/", metrics, name="metrics"),
]
