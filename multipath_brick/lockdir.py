"""The lock directory: which one, and whether it is safe to use as root.

The connector's lock files decide which process may touch a node record or a
map, and root opens them. Whoever controls their directory can therefore
make root create files elsewhere (a planted symlink), or hold a lock forever.
So the directory is chosen from the caller's settings, never a shared /tmp:

1. the ``lock_path`` the caller passes;
2. the consumer's ``[os_brick] lock_path`` (oslo.config), the directory
   os-brick's own locks use;
3. the consumer's ``[oslo_concurrency] lock_path`` (or ``OSLO_LOCK_PATH``), as
   os-brick falls back to it;
4. when running as root, :data:`RUN_DIR` (``/run`` is root's and in memory:
   a reboot empties it, as it ends every lock holder);
5. otherwise :class:`~multipath_brick.exception.LockPathError`, as
   oslo.concurrency refuses external locks without a ``lock_path``.

And it is checked, then held open (:func:`open_lock_dir`): every ancestor is
walked from ``/`` without following anything but symlinks owned by root or the
caller; each must be owned by root or the caller and not writable by group or
others unless sticky (``/tmp``). The directory itself is made (``mkdir``, mode
0700) only when its parent passed; an existing one must be a real directory
(not a symlink) owned by the caller or root, not writable by group or others.
Missing parents are not created: a chain of directories made as root along a
path nobody checked is what the walk exists to prevent. Lock files are then
opened relative to the held descriptor, so renaming or replacing the path
afterwards cannot redirect them.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from multipath_brick.exception import LockPathError

RUN_DIR = "/run/multipath-brick"
_MAX_SYMLINKS = 40  # the kernel's own limit (MAXSYMLINKS)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_HOW = (
    "pass lock_path= to the connector, or set [os_brick] lock_path (or "
    "[oslo_concurrency] lock_path) in the service's configuration; as root, "
    f"{RUN_DIR} is used"
)


def configured_lock_path(conf: Any = None) -> str | None:
    """The consumer's ``[os_brick] lock_path``, else its ``[oslo_concurrency] lock_path``.

    :param conf: an ``oslo_config.cfg.ConfigOpts`` (default: ``cfg.CONF``).
    :returns: the directory, or None when neither is set.
    """
    # Imported here: reading a setting must not cost every importer of the
    # connector oslo.concurrency's import (fasteners, and its option registration).
    from oslo_concurrency import lockutils
    from oslo_config import cfg

    conf = cfg.CONF if conf is None else conf
    try:
        value = conf.os_brick.lock_path
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        value = None  # os_brick.opts registers it on cfg.CONF only
    if value:
        return str(value)
    fallback = lockutils.get_lock_path(conf)
    return str(fallback) if fallback else None


def choose_lock_path(lock_path: str | None, *, conf: Any = None, euid: int | None = None) -> str:
    """The lock directory to use, in the order of the module docstring.

    :param lock_path: the caller's choice, if any.
    :param conf: the oslo.config object to read (default ``cfg.CONF``).
    :param euid: the effective uid to decide by (default: this process's).
    :raises LockPathError: nothing is configured and we are not root.
    """
    if lock_path:
        return os.path.abspath(lock_path)
    configured = configured_lock_path(conf)
    if configured:
        return os.path.abspath(configured)
    if (os.geteuid() if euid is None else euid) == 0:
        return RUN_DIR
    raise LockPathError("", f"none is configured and this process is not root: {_HOW}")


def open_lock_dir(path: str, *, uid: int | None = None) -> int:
    """Check the directory (creating it, mode 0700, if missing); its open descriptor.

    :param path: an absolute directory path.
    :param uid: who may own it besides root (default: the effective uid).
    :returns: an ``O_DIRECTORY`` descriptor of the checked directory; the
        caller keeps it open for as long as it uses the directory.
    :raises LockPathError: naming the path and what is wrong with it.
    """
    uid = os.geteuid() if uid is None else uid
    parent, name = os.path.split(os.path.normpath(path))
    if not os.path.isabs(path) or not name:
        raise LockPathError(path, "must be an absolute path below /")
    parent_fd = _walk(parent, uid, path)
    try:
        created = _make(parent_fd, name, path)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as error:
            raise LockPathError(path, _why_not_dir(parent_fd, name, error)) from None
    finally:
        os.close(parent_fd)
    try:
        info = os.fstat(fd)
        if created and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o700)  # the umask may have taken bits we need
            info = os.fstat(fd)
        problem = _unsafe(info, uid, sticky_ok=False)
        euid = os.geteuid()
        if not problem and euid not in (0, info.st_uid):
            problem = f"is owned by uid {info.st_uid}: uid {euid} cannot make lock files in it"
        if problem:
            raise LockPathError(path, problem)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make(parent_fd: int, name: str, path: str) -> bool:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        return False
    except OSError as error:
        raise LockPathError(path, f"cannot create it: {error.strerror}") from None
    return True


def _walk(parent: str, uid: int, path: str) -> int:
    """Descend from / to ``parent``, checking each directory; its descriptor."""
    fd = os.open("/", _DIR_FLAGS)
    todo = [part for part in parent.split("/") if part][::-1]
    where, hops = "/", 0
    try:
        problem = _unsafe(os.fstat(fd), uid, sticky_ok=True)
        while not problem and todo:
            part = todo.pop()
            here = os.path.join(where, part)
            try:
                info = os.lstat(part, dir_fd=fd)
            except FileNotFoundError:
                raise LockPathError(path, f"its parent {here} does not exist") from None
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if info.st_uid not in (0, uid):
                    problem = f"its parent {here} is a symlink owned by uid {info.st_uid}"
                    break
                if hops > _MAX_SYMLINKS:
                    problem = f"its parent {here}: too many levels of symbolic links"
                    break
                target = os.readlink(part, dir_fd=fd)
                todo += [p for p in target.split("/") if p][::-1]
                if target.startswith("/"):
                    os.close(fd)
                    fd, where = os.open("/", _DIR_FLAGS), "/"
                continue
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                raise LockPathError(path, f"its parent {here}: {error.strerror}") from None
            os.close(fd)
            fd, where = next_fd, here
            problem = _unsafe(os.fstat(fd), uid, sticky_ok=True)
            if problem:
                problem = f"its parent {here} {problem}"
        if problem:
            raise LockPathError(path, problem)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unsafe(info: os.stat_result, uid: int, *, sticky_ok: bool) -> str | None:
    """What makes a directory unsafe for root's lock files, or None."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid not in (0, uid):
        return f"is owned by uid {info.st_uid}, not by uid {uid} or root"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022 and not (sticky_ok and mode & stat.S_ISVTX):
        return f"has mode {mode:04o}: group or others may write to it (0700 wanted)"
    return None


def _why_not_dir(parent_fd: int, name: str, error: OSError) -> str:
    """Why ``name`` could not be opened as a directory, in words."""
    try:
        info = os.lstat(name, dir_fd=parent_fd)
    except OSError:
        return f"cannot open it: {error.strerror}"
    if stat.S_ISLNK(info.st_mode):
        return f"is a symlink (to {os.readlink(name, dir_fd=parent_fd)!r}), not a directory"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    return f"cannot open it: {error.strerror}"
