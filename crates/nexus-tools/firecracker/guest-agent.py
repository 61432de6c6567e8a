#!/usr/bin/env python3
"""Nexus guest agent: runs code jobs inside a Firecracker microVM.

The host connects through Firecracker's vsock (``CONNECT <port>\\n`` / ``OK <n>\\n`` is handled by
Firecracker), sends one job and reads one result on the same connection. Frames are a 4-byte
big-endian length followed by that many bytes of UTF-8 JSON.

Job (host -> agent)::

    {"protocol": 1, "language": "python" | "shell", "code": "...",
     "files": [{"path": "rel/path", "data": "<base64>"}],
     "limits": {"wall_time_ms": 30000, "memory_bytes": 268435456, "pids": 64,
                "output_bytes": 65536, "disk_bytes": 67108864, "files_bytes": 16777216}}

Result (agent -> host)::

    {"protocol": 1, "exit_code": 0 | null, "stdout": "<base64>", "stderr": "<base64>",
     "truncated": false, "timed_out": false, "oom_killed": false, "duration_ms": 12,
     "files": [{"path": "rel/path", "data": "<base64>"}]}

or ``{"protocol": 1, "error": "..."}`` when the job could not be run at all.

Each job runs as an unprivileged user (when the agent is root) in a fresh working directory,
in its own session, with RLIMIT_NPROC / RLIMIT_AS / RLIMIT_FSIZE / RLIMIT_CORE set, killed at
its wall time; stdout and stderr are capped while read; the regular files left in
``<work>/out`` are collected without following symbolic links.

Modes:

- in the VM (default): listens on AF_VSOCK ``--port`` (52); started by the rootfs' init as root,
  with ``--tmpfs`` so the working directory is a size-limited tmpfs.
- for the fake Firecracker of the Nexus test kit: ``--unix-dir DIR`` listens on the unix socket
  ``DIR/port-<port>.sock`` instead (the fake forwards ``CONNECT <port>`` there), usually with
  ``--die-with-parent``.

Standard library only (Python 3.8+ on Linux).
"""

import argparse
import base64
import ctypes
import json
import os
import pwd
import resource
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

PROTOCOL = 1
MAX_JOB_FRAME = 256 * 1024 * 1024
MAX_OUTPUT_FILES = 1000
READ_CHUNK = 65536
# After the main process exits, how long stragglers may keep the output pipes open.
DRAIN_AFTER_EXIT = 0.5
PR_SET_PDEATHSIG = 1
VMADDR_CID_ANY = 0xFFFFFFFF


class JobError(Exception):
    """A job that cannot be run (bad request, cannot start the program)."""


# ---------------------------------------------------------------- framing


def read_exact(conn, n):
    chunks = []
    while n > 0:
        chunk = conn.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("connection closed mid-frame")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(conn, limit):
    (length,) = struct.unpack(">I", read_exact(conn, 4))
    if length > limit:
        raise JobError("job frame of %d bytes exceeds %d" % (length, limit))
    return json.loads(read_exact(conn, length).decode("utf-8"))


def write_frame(conn, obj):
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    conn.sendall(struct.pack(">I", len(body)) + body)


# ---------------------------------------------------------------- helpers


def set_pdeathsig():
    """Asks the kernel to SIGKILL this process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def check_rel_path(path):
    """A relative path without '..', empty or absolute parts; returns its parts."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\x00" in path:
        raise JobError("invalid file path %r" % (path,))
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise JobError("invalid file path %r" % (path,))
    return parts


def job_user(args):
    """(uid, gid) to run jobs as, or None to run as the agent's own user."""
    if os.geteuid() != 0 or not args.user:
        return None
    entry = pwd.getpwnam(args.user)
    return entry.pw_uid, entry.pw_gid


def chown(path, user):
    if user is not None:
        os.chown(path, user[0], user[1], follow_symlinks=False)


def prepare_work_dir(args, limits, user):
    work = args.work_dir
    release_work_dir(args)
    os.makedirs(work, mode=0o700, exist_ok=True)
    if args.tmpfs:
        opts = "size=%d,mode=0700,nosuid,nodev" % max(limits["disk_bytes"], 4096)
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "nexus-work", work], check=True)
    os.chmod(work, 0o700)
    chown(work, user)


def release_work_dir(args):
    work = args.work_dir
    if args.tmpfs:
        # The mount point stays (the root file system is read-only); the tmpfs goes.
        if os.path.ismount(work):
            subprocess.run(["umount", "-l", work], check=False)
        return
    if os.path.lexists(work):
        if os.path.isdir(work) and not os.path.islink(work):
            shutil.rmtree(work, ignore_errors=True)
        else:
            os.unlink(work)


def write_files(work, files, user):
    for item in files:
        parts = check_rel_path(item.get("path"))
        data = base64.b64decode(item.get("data", ""), validate=True)
        current = work
        for part in parts[:-1]:
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current, 0o700)
                chown(current, user)
        target = os.path.join(current, parts[-1])
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        chown(target, user)


def program_file(args, language, code):
    os.makedirs(args.state_dir, mode=0o755, exist_ok=True)
    os.chmod(args.state_dir, 0o755)
    name = "main.py" if language == "python" else "main.sh"
    path = os.path.join(args.state_dir, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(code)
    os.chmod(path, 0o644)
    return path


def command(args, language, path):
    if language == "python":
        return [args.python, path]
    if language == "shell":
        return ["/bin/sh", path]
    raise JobError("unsupported language %r" % (language,))


def limit_child(limits, switch_user):
    """Runs in the child between fork and exec (after the user switch)."""

    def apply():
        set_pdeathsig()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["disk_bytes"], limits["disk_bytes"]))
        if switch_user:
            # Counted per user: only meaningful for a user of its own.
            resource.setrlimit(resource.RLIMIT_NPROC, (limits["pids"], limits["pids"]))
        try:
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")
        except OSError:
            pass

    return apply


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- running


def capture(proc, limits):
    """Reads stdout and stderr up to the cap until they close; kills at the wall time."""
    cap = limits["output_bytes"]
    out = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = False
    timed_out = False
    start = time.monotonic()
    deadline = start + limits["wall_time_ms"] / 1000.0
    exited_at = None
    sel = selectors.DefaultSelector()
    for fd in out:
        sel.register(fd, selectors.EVENT_READ)
    while sel.get_map():
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
            kill_group(proc.pid)
        if now >= deadline:
            if exited_at is None:
                timed_out = True
            kill_group(proc.pid)
            break
        if exited_at is not None and now >= exited_at + DRAIN_AFTER_EXIT:
            break
        wait = min(deadline - now, 0.05)
        for key, _ in sel.select(wait):
            chunk = os.read(key.fd, READ_CHUNK)
            if not chunk:
                sel.unregister(key.fd)
                continue
            buf = out[key.fd]
            room = cap - len(buf)
            if len(chunk) > room:
                truncated = True
                chunk = chunk[: max(room, 0)]
            buf.extend(chunk)
    sel.close()
    if timed_out:
        kill_group(proc.pid)
    returncode = proc.wait()
    kill_group(proc.pid)
    duration = time.monotonic() - start
    return out[proc.stdout.fileno()], out[proc.stderr.fileno()], truncated, timed_out, returncode, duration


def collect_outputs(work, limit):
    """Regular files under work/out, without following symbolic links, up to `limit` bytes."""
    files = []
    total = 0
    truncated = False
    try:
        root = os.open(os.path.join(work, "out"), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return files, truncated
    stack = [(root, "")]
    try:
        while stack:
            dir_fd, prefix = stack.pop()
            try:
                entries = sorted(os.listdir(dir_fd))
                for name in entries:
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        continue
                    rel = prefix + name
                    if stat.S_ISDIR(st.st_mode):
                        try:
                            child = os.open(
                                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd
                            )
                        except OSError:
                            continue
                        stack.append((child, rel + "/"))
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    if len(files) >= MAX_OUTPUT_FILES or total + st.st_size > limit:
                        truncated = True
                        continue
                    try:
                        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                    except OSError:
                        continue
                    with os.fdopen(fd, "rb") as handle:
                        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                            continue
                        data = handle.read(limit - total + 1)
                    if total + len(data) > limit:
                        truncated = True
                        continue
                    total += len(data)
                    files.append({"path": rel, "data": base64.b64encode(data).decode("ascii")})
            finally:
                os.close(dir_fd)
    finally:
        for dir_fd, _ in stack:
            os.close(dir_fd)
    return files, truncated


def run_job(args, job):
    if job.get("protocol") != PROTOCOL:
        raise JobError("unsupported protocol %r (agent speaks %d)" % (job.get("protocol"), PROTOCOL))
    limits = job["limits"]
    for key in ("wall_time_ms", "memory_bytes", "pids", "output_bytes", "disk_bytes", "files_bytes"):
        if not isinstance(limits.get(key), int) or limits[key] < 0:
            raise JobError("invalid limit %s" % key)
    language = job.get("language")
    code = job.get("code")
    if not isinstance(code, str):
        raise JobError("code must be a string")
    user = job_user(args)
    prepare_work_dir(args, limits, user)
    try:
        write_files(args.work_dir, job.get("files") or [], user)
        out_dir = os.path.join(args.work_dir, "out")
        if not os.path.isdir(out_dir):
            os.mkdir(out_dir, 0o700)
        chown(out_dir, user)
        argv = command(args, language, program_file(args, language, code))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": args.work_dir,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        popen = dict(
            cwd=args.work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=limit_child(limits, user is not None),
        )
        if user is not None:
            popen.update(user=user[0], group=user[1], extra_groups=[])
        try:
            proc = subprocess.Popen(argv, **popen)
        except OSError as err:
            raise JobError("cannot start %s: %s" % (argv[0], err))
        try:
            stdout, stderr, truncated, timed_out, returncode, duration = capture(proc, limits)
        finally:
            kill_group(proc.pid)
            proc.stdout.close()
            proc.stderr.close()
        oom_killed = False
        exit_code = returncode
        if timed_out:
            exit_code = None
        elif returncode == -signal.SIGKILL:
            # Nobody here killed it: the kernel's OOM killer did.
            oom_killed = True
            exit_code = None
        elif returncode < 0:
            exit_code = 128 - returncode
        files, files_truncated = collect_outputs(args.work_dir, limits["files_bytes"])
        return {
            "protocol": PROTOCOL,
            "exit_code": exit_code,
            "stdout": base64.b64encode(bytes(stdout)).decode("ascii"),
            "stderr": base64.b64encode(bytes(stderr)).decode("ascii"),
            "truncated": truncated or files_truncated,
            "timed_out": timed_out,
            "oom_killed": oom_killed,
            "duration_ms": int(duration * 1000),
            "files": files,
        }
    finally:
        release_work_dir(args)
        for name in ("main.py", "main.sh"):
            try:
                os.unlink(os.path.join(args.state_dir, name))
            except FileNotFoundError:
                pass


def serve(conn, args):
    try:
        job = read_frame(conn, MAX_JOB_FRAME)
    except (EOFError, ConnectionError):
        return
    except (JobError, ValueError) as err:
        write_frame(conn, {"protocol": PROTOCOL, "error": str(err)})
        return
    try:
        result = run_job(args, job)
    except (JobError, KeyError, TypeError, ValueError, OSError, subprocess.SubprocessError) as err:
        result = {"protocol": PROTOCOL, "error": "%s: %s" % (type(err).__name__, err)}
    try:
        write_frame(conn, result)
    except (ConnectionError, OSError):
        pass


def listener(args):
    if args.unix_dir:
        path = os.path.join(args.unix_dir, "port-%d.sock" % args.port)
        if os.path.lexists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    else:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind((VMADDR_CID_ANY, args.port))
    sock.listen(8)
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=52, help="vsock port (default 52)")
    parser.add_argument("--unix-dir", help="listen on DIR/port-<port>.sock instead of AF_VSOCK")
    parser.add_argument("--work-dir", default="/work", help="the job's working directory")
    parser.add_argument("--state-dir", default="/run/nexus-agent", help="where the program file goes")
    parser.add_argument("--user", default="nobody", help="user jobs run as when the agent is root")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter of python jobs")
    parser.add_argument("--tmpfs", action="store_true", help="mount a tmpfs of disk_bytes on the work dir")
    parser.add_argument("--die-with-parent", action="store_true", help="exit when the parent dies")
    args = parser.parse_args()
    if args.die_with_parent:
        parent = os.getppid()
        set_pdeathsig()
        if os.getppid() != parent:
            return 0
    if not args.unix_dir and os.geteuid() == 0:
        try:
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("-1000")
        except OSError:
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sock = listener(args)
    while True:
        conn, _ = sock.accept()
        with conn:
            try:
                serve(conn, args)
            except Exception as err:  # one bad job must not stop the agent
                print("nexus-agent: job failed: %r" % (err,), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
