"""A Unix socket only this OS user can connect to: how an application behind its mesh
sidecar listens without opening a TCP port (ADR 0016)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

# sockaddr_un's sun_path is 108 bytes with the terminating NUL on Linux.
MAX_PATH_BYTES = 107
SOCKET_MODE = 0o600
DIRECTORY_MODE = 0o700


def check_path(path: Path) -> None:
    """ValueError if ``path`` is too long for a Unix socket address."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ValueError(
            f"{path}: a Unix socket path is at most {MAX_PATH_BYTES} bytes; use a shorter "
            "data directory"
        )


def prepare_directory(path: Path) -> None:
    """The socket's directory, made (or narrowed) to mode 0700: nobody else may even look
    up a name in it, whatever mode a socket in it has."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    directory.chmod(DIRECTORY_MODE)


def remove_stale(path: Path) -> None:
    """Remove a socket a previous run left (never a file of another kind)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
        else:
            raise FileExistsError(f"{path} exists and is not a socket")


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """Files made meanwhile get mode 0600 from the start (bind(2) honours the umask), so no
    moment exists in which another user could connect."""
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)


def bind(path: Path) -> socket.socket:
    """A stream socket bound to ``path`` with mode 0600 in a 0700 directory (not listening
    yet: the server that takes it listens)."""
    check_path(path)
    prepare_directory(path)
    remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with owner_only_umask():
            sock.bind(os.fspath(path))
        path.chmod(SOCKET_MODE)
    except BaseException:
        sock.close()
        raise
    return sock
