"""The C library, for the Linux calls Python has no binding for (prctl, inotify)."""

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def linux_libc() -> ctypes.CDLL | None:
    """The C library, errno kept, on Linux; None elsewhere or where it can't be found."""
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not libc_name:
        return None
    return ctypes.CDLL(libc_name, use_errno=True)
