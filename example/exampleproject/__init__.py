"""Taskmill's example project: a small shop whose background work runs on Taskmill."""
