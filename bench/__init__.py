"""Taskmill's benchmark suite: `python -m bench` (`make bench`). Measures, never asserts."""
