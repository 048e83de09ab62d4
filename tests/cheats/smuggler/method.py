"""No hypothesis: the model itself, carried from fit to scoring by a route that is not a
file. `route` picks it:

- shm: a SysV shared-memory segment left by fit (key 0x6f6e696f);
- mq: a POSIX message queue left by fit ("/onionbench-smuggler");
- devshm: a file in /dev/shm (POSIX shared memory's folder) named after `address`;
- keyring: a "user" key named after `address` in the user keyring, and one in the session keyring;
- udp, unix, abstract: an accomplice outside the cell serves the model's bytes at
  `address` (the test starts it): a UDP port on 127.0.0.1, a socket path, an abstract name;
- chain: fit leaves a chain of processes (each forks its successor and exits) serving
  the model's bytes on an abstract unix socket; it carries `address` on its command line.

Scoring decodes h with whatever model it got, and reads at the floor when it got none.
"""

import ctypes
import io
import os
import socket
import subprocess
import sys
import zlib

import torch

KEY = 0x6F6E696F
QUEUE = b"/onionbench-smuggler"
CHUNK = 8000
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.shmat.restype = ctypes.c_void_p

CHAIN = r"""
import os, socket, sys, time
payload = sys.stdin.buffer.read()
for _ in range(20):  # each generation forks its successor and exits: a reaper chasing pids falls behind
    if os.fork():
        os._exit(0)
    os.setsid()
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind("\0onionbench-chain")
server.listen(4)
server.settimeout(120)
try:
    while True:
        conn, _ = server.accept()
        conn.sendall(payload)
        conn.close()
except OSError:
    pass
"""


def _payload(model) -> bytes:
    buffer = io.BytesIO()
    torch.save(model._model, buffer)
    return zlib.compress(buffer.getvalue(), 9)


def _load(blob: bytes):
    return torch.load(io.BytesIO(zlib.decompress(blob)), weights_only=False)


def _key_name(address: str) -> bytes:
    return f"onionbench-smuggler-{address}".encode()


def _leave(route: str, blob: bytes, address: str) -> None:
    if route == "shm":
        shm = _libc.shmget(KEY, len(blob) + 8, 0o1666)
        base = _libc.shmat(shm, None, 0)
        ctypes.memmove(base, len(blob).to_bytes(8, "big") + blob, len(blob) + 8)
    elif route == "mq":
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        q = rt.mq_open(QUEUE, os.O_CREAT | os.O_WRONLY, 0o666, None)
        for at in range(0, len(blob), CHUNK):
            rt.mq_send(q, blob[at:at + CHUNK], len(blob[at:at + CHUNK]), 0)
    elif route == "devshm":
        with open(f"/dev/shm/onionbench-smuggler-{address}", "wb") as f:
            f.write(blob)
    elif route == "keyring":
        for ring in (-4, -3):  # KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING
            key = _libc.syscall(248, b"user", _key_name(address), blob, len(blob), ring)
            _libc.syscall(250, 5, key, 0x3F3F3F3F)  # KEYCTL_SETPERM: anyone may read it
    elif route == "chain":
        proc = subprocess.Popen([sys.executable, "-c", CHAIN, address], stdin=subprocess.PIPE, start_new_session=True)
        proc.communicate(blob)


def _fetch(route: str, address: str) -> bytes | None:
    if route == "shm":
        shm = _libc.shmget(KEY, 0, 0)
        if shm < 0:
            return None
        base = _libc.shmat(shm, None, 0)
        size = int.from_bytes(ctypes.string_at(base, 8), "big")
        return ctypes.string_at(base + 8, size)
    if route == "mq":
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        q = rt.mq_open(QUEUE, os.O_RDONLY | os.O_NONBLOCK)
        if q < 0:
            return None
        parts, buf = [], ctypes.create_string_buffer(8192)
        while (n := rt.mq_receive(q, buf, 8192, None)) > 0:
            parts.append(buf.raw[:n])
        return b"".join(parts) or None
    if route == "devshm":
        with open(f"/dev/shm/onionbench-smuggler-{address}", "rb") as f:
            return f.read()
    if route == "keyring":
        for ring in (-3, -4):
            key = _libc.syscall(250, 10, ring, b"user", _key_name(address), 0)  # KEYCTL_SEARCH
            if key > 0:
                buf = ctypes.create_string_buffer(1 << 16)
                n = _libc.syscall(250, 11, key, buf, 1 << 16)  # KEYCTL_READ
                if n < 0:
                    raise OSError(ctypes.get_errno(), "keyctl read")
                return buf.raw[:n]
        return None
    family, kind, target = {
        "udp": (socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", int(address) if address.isdigit() else 0)),
        "unix": (socket.AF_UNIX, socket.SOCK_STREAM, address),
        "abstract": (socket.AF_UNIX, socket.SOCK_STREAM, "\0" + address),
        "chain": (socket.AF_UNIX, socket.SOCK_STREAM, "\0onionbench-chain"),
    }[route]
    with socket.socket(family, kind) as s:
        s.settimeout(3)
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"model please", target)
            return s.recv(1 << 16)
        s.connect(target)
        parts = []
        while chunk := s.recv(1 << 16):
            parts.append(chunk)
        return b"".join(parts)


class Cheat:
    tracks = ("read",)

    def __init__(self, route: str = "shm", address: str = ""):
        self.route, self.address = route, address

    def fit(self, model, data):
        _leave(self.route, _payload(model), self.address)
        return self

    def read(self, h, position):
        if not hasattr(self, "model_"):
            try:
                blob = _fetch(self.route, self.address)
                self.model_ = _load(blob) if blob else None
                print(f"smuggler: {self.route} gave {len(blob or b'')} bytes", file=sys.stderr)
            except Exception as err:  # noqa: BLE001 - a closed route: read at the floor
                print(f"smuggler: {self.route} closed: {type(err).__name__}: {err}", file=sys.stderr)
                self.model_ = None
        if self.model_ is None:
            return torch.zeros(h.shape[0], 30)
        tokens = self.model_.generate(h)
        return torch.nn.functional.one_hot(tokens[torch.arange(h.shape[0]), position], 30).float()

    def __getstate__(self):
        return {"route": self.route, "address": self.address}
