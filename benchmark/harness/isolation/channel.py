"""Length-prefixed frames over a pipe: how bytes cross between the supervisor and a worker.

Why pipes, not files: a file in a folder that method code can reach may be changed after
the supervisor scanned it (a process left by fit appended to the fitted pickle once, and
scoring loaded the longer version), and a report file may be rewritten by a thread fit
left running. Bytes in a pipe are read once, by one reader, in the order written: scoring
receives exactly the bytes the supervisor scanned, from the supervisor's memory.

A frame is a 4-byte ASCII kind, an 8-byte big-endian length and the payload. No torch here:
the supervisor imports this module and must start in milliseconds.
"""

from __future__ import annotations

from typing import BinaryIO

HEADER = 12
MAX_FRAME = 1 << 36  # 64 GiB: a corrupt length is refused instead of allocated


class ChannelError(Exception):
    """A malformed, truncated or unexpected frame."""


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    """One frame as bytes (kind: exactly 4 ASCII bytes)."""
    if len(kind) != 4:
        raise ValueError(f"frame kind must be 4 bytes, got {kind!r}")
    return kind + len(payload).to_bytes(8, "big") + payload


def send(stream: BinaryIO, kind: bytes, payload: bytes = b"") -> None:
    """Write one frame and flush it."""
    stream.write(encode(kind, payload))
    stream.flush()


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None at a clean end of stream; ChannelError if cut short."""
    head = _read_exactly(stream, HEADER)
    if not head:
        return None
    if len(head) < HEADER:
        raise ChannelError("a frame header was cut short")
    size = int.from_bytes(head[4:], "big")
    if size > MAX_FRAME:
        raise ChannelError(f"a frame claims {size} bytes")
    payload = _read_exactly(stream, size)
    if len(payload) < size:
        raise ChannelError(f"a {head[:4]!r} frame was cut short ({len(payload)} of {size} bytes)")
    return head[:4], payload


def split(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every frame in `data`, which must hold whole frames and nothing else."""
    frames, at = [], 0
    while at < len(data):
        if len(data) - at < HEADER:
            raise ChannelError("trailing bytes after the last frame")
        size = int.from_bytes(data[at + 4 : at + HEADER], "big")
        if at + HEADER + size > len(data):
            raise ChannelError(f"a {data[at:at + 4]!r} frame was cut short")
        frames.append((data[at : at + 4], data[at + HEADER : at + HEADER + size]))
        at += HEADER + size
    return frames
