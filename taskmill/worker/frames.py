"""Length-prefixed frames from a child to its supervisor, read many at a time.

A child reports one outcome per task. Read one message per call (a poll, then a read for the
length and one for the body), a drain of short tasks cost the supervisor three system calls
per task; a FrameReader takes every frame waiting on the socket in one read.
"""

import os
import socket
import struct
from typing import Final

_HEADER: Final = struct.Struct("!I")
# What one read takes at most: many outcome frames, and a frame of captured progress.
READ_SIZE: Final = 256 * 1024


def frame(data: bytes) -> bytes:
    """Return data as one frame: its length, then itself."""
    return _HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of data to fd (a blocking socket may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FrameReader:
    """Reads the frames waiting on a socket without blocking, keeping a partial one."""

    def __init__(self, fd: int) -> None:
        # A socket of its own over a duplicate of fd: closing it leaves fd to its owner.
        self._socket = socket.socket(fileno=os.dup(fd))
        self._buffer = b""
        self.at_end = False  # the other end closed its side

    def read_frames(self) -> list[bytes]:
        """Return every whole frame waiting now, in order; [] if none."""
        if self.at_end:
            return []
        chunks = [self._buffer] if self._buffer else []
        while True:
            try:
                data = self._socket.recv(READ_SIZE, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.at_end = True
                break
            if not data:
                self.at_end = True
                break
            chunks.append(data)
            if len(data) < READ_SIZE:
                break
        buffer = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        frames = []
        at = 0
        end = len(buffer)
        while end - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, at)
            if end - at - _HEADER.size < size:
                break
            at += _HEADER.size
            frames.append(buffer[at : at + size])
            at += size
        self._buffer = buffer[at:]
        return frames

    def close(self) -> None:
        self._socket.close()
