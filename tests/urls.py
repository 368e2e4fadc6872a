"""URLs for the test project: the admin, so admin tests can use the test client."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
