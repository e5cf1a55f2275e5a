"""LocalStack without Docker, for the end-to-end suite: ``python3 localstack/native.py install|start|stop|status``.

* ``install`` builds LocalStack's own virtualenv (``$LOCALSTACK_VENV``, default ``<repo>/.venv-localstack``,
  Python 3.11) from ``requirements-native.txt`` and fetches kinesis-mock (npm) into it. It does nothing when
  the virtualenv matches the requirements (a stamp holds their hash) and rebuilds it when they changed.
* ``start`` runs ``python -m localstack.runtime.main`` in the background on ``127.0.0.1:$LOCALSTACK_PORT``
  (default 4566) with kinesis, s3, iam and sts, its files, pid and log under ``$LOCALSTACK_HOME`` (default
  ``<repo>/.traffic-stream/localstack``), and returns once its health endpoint reports those services
  available or running and Kinesis answers; if it does not, it stops it and fails with the log's tail.
* ``stop`` ends it (its process group, and kinesis-mock, which runs in a group of its own).
* ``status`` prints its pid and health; exit code 0 only when every service is ready.

Standard library only (with :mod:`infra.server_process`), so any ``python3`` runs it:
``localstack/native.py`` is its command line, and tests import it as ``infra.localstack_native``
(``install()``, ``start(port, home) -> pid``, ``stop(home)``). DynamoDB is not LocalStack's here
(its DynamoDB wants a Java download): point ``AWS_ENDPOINT_URL_DYNAMODB`` at a moto server.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra import server_process

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "localstack" / "requirements-native.txt"
SERVICES = ("kinesis", "s3", "iam", "sts")
READY = ("available", "running")
DEFAULT_PORT = 4566
PYTHON_VERSION = (3, 11)
# Bump when the install steps change, so that existing virtualenvs are rebuilt.
INSTALL_LAYOUT = "1"
STAMP = ".traffic-stream-requirements.sha256"
# LocalStack's static-libs tree inside the virtualenv: kinesis-mock is fetched there once by `install`.
STATIC_FS = "localstack-fs"
STATIC_LIBS = Path("usr", "lib", "localstack")
# Set in LocalStack's environment (so in kinesis-mock's too): how `stop` finds every process of one home.
MARKER = "TRAFFIC_LOCALSTACK_HOME"
PID_FILE = "localstack.pid"
PORT_FILE = "localstack.port"
LOG_FILE = "localstack.log"

#: The LocalStacks this process started, by pid: `stop` waits on them and collects their exit status.
_started: dict[int, subprocess.Popen] = {}


class LocalStackError(RuntimeError):
    """LocalStack could not be installed, started or stopped; the message says why (with the log's tail)."""


# ---------------------------------------------------------------------------------------------- locations


def venv_dir() -> Path:
    return Path(os.environ.get("LOCALSTACK_VENV") or REPO / ".venv-localstack").expanduser().resolve()


def default_home() -> Path:
    return Path(os.environ.get("LOCALSTACK_HOME") or REPO / ".traffic-stream" / "localstack").expanduser().resolve()


def default_port() -> int:
    return int(os.environ.get("LOCALSTACK_PORT") or DEFAULT_PORT)


def endpoint(port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or default_port()}"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _clean_env(venv: Path) -> dict[str, str]:
    """The caller's environment for LocalStack's virtualenv, without the caller's endpoint overrides
    (they are for clients, not for the server).

    ``PYTHONPATH`` (the repo, in the Makefile) may stay: the repo's ``localstack/`` folder has no
    ``__init__.py``, so it is at most a portion of the ``localstack`` namespace package that
    ``localstack-core`` installs, and ``localstack.*`` is still found in the virtualenv.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL") and k != "VIRTUAL_ENV"}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    return env


# ------------------------------------------------------------------------------------------------ install


def _requirements_hash() -> str:
    digest = hashlib.sha256(f"layout {INSTALL_LAYOUT}\n".encode())
    digest.update(REQUIREMENTS.read_bytes())
    return digest.hexdigest()


def _base_python() -> str:
    explicit = os.environ.get("LOCALSTACK_PYTHON")
    if explicit:
        return explicit
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    name = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(name)
    if found:
        return found
    raise LocalStackError(f"LocalStack 4.9.2 needs Python {name[6:]}: put {name} on PATH or set LOCALSTACK_PYTHON")


@contextlib.contextmanager
def _lock(venv: Path):
    """One install at a time per virtualenv (a CI step and a test fixture may both ask)."""
    import fcntl

    key = hashlib.sha1(str(venv).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"traffic-stream-localstack-{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_installed(venv: Path | None = None) -> bool:
    venv = venv or venv_dir()
    stamp = venv / STAMP
    return (
        _venv_python(venv).exists() and stamp.is_file() and stamp.read_text().strip() == _requirements_hash()
    )


def _run(cmd: list[str], what: str, **kwargs) -> None:
    result = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise LocalStackError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}")


# Run inside the LocalStack virtualenv: fetch kinesis-mock with LocalStack's own installer (same
# npm package and version it would fetch at first use) into its static libs.
_PREFETCH_KINESIS_MOCK = """
from localstack.packages.api import InstallTarget
from localstack.services.kinesis.packages import kinesismock_package
kinesismock_package.install(target=InstallTarget.STATIC_LIBS)
print(kinesismock_package.get_installed_dir())
"""


def install(force: bool = False, verbose: bool = False) -> Path:
    """Create (or rebuild) LocalStack's virtualenv if it does not match requirements-native.txt; return it."""
    venv = venv_dir()
    if not force and is_installed(venv):
        return venv
    with _lock(venv):
        if not force and is_installed(venv):  # another process installed it while we waited
            return venv
        if venv == (REPO / ".venv").resolve():
            raise LocalStackError(f"refusing to use the project's own virtualenv {venv} for LocalStack")
        if venv.exists():
            if not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
                raise LocalStackError(f"{venv} exists and is not a virtualenv: move it or set LOCALSTACK_VENV")
            shutil.rmtree(venv)
        python = _base_python()
        log = print if verbose else (lambda *a, **k: None)
        log(f"creating {venv} with {python}")
        _run([python, "-m", "venv", str(venv)], "creating the virtualenv")
        env = _clean_env(venv)
        log(f"installing {REQUIREMENTS.name}")
        _run(
            [str(_venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             "-r", str(REQUIREMENTS)],
            "pip install", env=env, cwd=venv,
        )
        log("fetching kinesis-mock (npm)")
        # OVERRIDE_IN_DOCKER=0: this machine looks like a container to LocalStack, which would then ignore
        # FILESYSTEM_ROOT and write to /usr/lib/localstack
        env.update({"OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(venv / STATIC_FS)})
        _run([str(_venv_python(venv)), "-c", _PREFETCH_KINESIS_MOCK], "fetching kinesis-mock", env=env, cwd=venv)
        if not (venv / STATIC_FS / STATIC_LIBS / "kinesis-local").is_dir():
            raise LocalStackError(f"kinesis-mock was not fetched into {venv / STATIC_FS / STATIC_LIBS}")
        (venv / STAMP).write_text(_requirements_hash() + "\n")
    bind_kinesis_mock_to_loopback(venv)
    return venv


def bind_kinesis_mock_to_loopback(venv: Path) -> int:
    """kinesis-mock listens on every interface with no setting to change it: rewrite its
    listen address to 127.0.0.1 in LocalStack's copy. Returns how many copies were patched."""
    patched = 0
    for main_js in (venv / STATIC_FS / STATIC_LIBS / "kinesis-local").glob("*/node_modules/kinesis-local/main.js"):
        source = main_js.read_text()
        if source.count('"0.0.0.0"') == 1:
            main_js.write_text(source.replace('"0.0.0.0"', '"127.0.0.1"'))
            patched += 1
        elif '"0.0.0.0"' in source:
            raise LocalStackError(f"{main_js}: kinesis-mock's listen address is not where expected")
    return patched


# -------------------------------------------------------------------------------------------- processes


def _marked(home: Path) -> set[int]:
    """Processes whose environment carries this home's marker: LocalStack and its kinesis-mock."""
    needle = f"{MARKER}={home}".encode()
    found = set()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def _recorded_port(home: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((home / PORT_FILE).read_text().strip())
    return None


def running_pid(home: Path | None = None) -> int | None:
    """The pid of this home's LocalStack, if it runs (a pid file left by a dead one is ignored)."""
    home = Path(home or default_home()).resolve()
    pid = server_process.read_pid(home / PID_FILE)
    if pid is None or not server_process.alive(pid):
        return None
    if Path("/proc").is_dir() and pid not in _started and pid not in _marked(home):
        return None  # the pid was reused by some other process
    return pid


# ------------------------------------------------------------------------------------------------- health


def health(port: int | None = None, timeout: float = 2.0) -> dict | None:
    """LocalStack's /_localstack/health as a dict, or None when nothing (healthy) answers."""
    try:
        with urllib.request.urlopen(f"{endpoint(port)}/_localstack/health", timeout=timeout) as response:
            return json.loads(response.read().decode())
    except (OSError, ValueError):
        return None


def not_ready(report: dict | None, services=SERVICES) -> list[str]:
    """The services that are not available or running in a health report (all of them without one)."""
    states = (report or {}).get("services", {})
    return [f"{name}={states.get(name, 'missing')}" for name in services if states.get(name) not in READY]


def _ready(port: int) -> bool | str:
    """True once every service is available or running; else which are not."""
    report = health(port)
    missing = not_ready(report)
    return True if report is not None and not missing else ", ".join(missing)


def _warm_kinesis(port: int, timeout: float) -> None:
    """One Kinesis call, so that kinesis-mock (started at first use) is up before `start` returns.

    LocalStack does not check signatures; the access key maps to its default account 000000000000,
    the one every non-numeric key (``test``, ``embedded``) maps to.
    """
    request = urllib.request.Request(
        endpoint(port) + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Kinesis_20131202.ListStreams",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kinesis/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-target, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=max(timeout, 1.0)) as response:
            json.loads(response.read().decode())
    except urllib.error.HTTPError as e:
        raise LocalStackError(f"Kinesis ListStreams answered {e.code}: {e.read()[:500]!r}") from e
    except (OSError, ValueError) as e:
        raise LocalStackError(f"Kinesis ListStreams failed: {e}") from e


# ----------------------------------------------------------------------------------------- start / stop


def _server_env(venv: Path, home: Path, port: int) -> dict[str, str]:
    env = _clean_env(venv)
    env.update(
        {
            MARKER: str(home),
            "OVERRIDE_IN_DOCKER": "0",  # this machine may look like a container; LocalStack must not act as in one
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",
            "DNS_ADDRESS": "0",  # no DNS server (it would want port 53)
            "SKIP_SSL_CERT_DOWNLOAD": "1",  # offline: use the self-signed certificate
            "DISABLE_EVENTS": "1",  # no analytics calls out
            "PERSISTENCE": "0",
            "KINESIS_PERSISTENCE": "0",
            "FILESYSTEM_ROOT": str(home / "fs"),
            "SERVICES": ",".join(SERVICES),
            "EAGER_SERVICE_LOADING": "1",  # load the providers at start, so health says "running" when they are
        }
    )
    return env


def _link_static_libs(venv: Path, home: Path) -> None:
    """Let this home's LocalStack find the kinesis-mock that `install` fetched into the virtualenv."""
    source = venv / STATIC_FS / STATIC_LIBS
    target = home / "fs" / STATIC_LIBS
    if not source.is_dir():
        return
    if target.is_symlink():
        if target.resolve() == source.resolve():
            return
        target.unlink()
    elif target.exists():
        return  # a real folder from an earlier layout: LocalStack fetches what it lacks itself
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source, target_is_directory=True)


def start(port: int | None = None, home: Path | str | None = None, timeout: float | None = None,
          warm_kinesis: bool = True) -> int:
    """Start LocalStack (installing it first if needed) and return its pid once it is healthy.

    Already running for this home and healthy on ``port``: returns that pid. Fails with
    :class:`LocalStackError` (and nothing left running) if it is not healthy within ``timeout`` seconds
    (``$LOCALSTACK_START_TIMEOUT``, default 180).
    """
    port = int(port or default_port())
    home = Path(home or default_home()).expanduser().resolve()
    timeout = float(timeout or os.environ.get("LOCALSTACK_START_TIMEOUT") or 180)
    venv = install()
    home.mkdir(parents=True, exist_ok=True)

    pid = running_pid(home)
    if pid is not None:
        recorded = _recorded_port(home)
        if recorded == port and not not_ready(health(port)):
            return pid
        raise LocalStackError(
            f"LocalStack already runs for {home} (pid {pid}, port {recorded}): stop it first (native.py stop)"
        )
    if not server_process.port_free(port):
        raise LocalStackError(f"127.0.0.1:{port} is in use by another process; set LOCALSTACK_PORT to a free port")

    bind_kinesis_mock_to_loopback(venv)
    _link_static_libs(venv, home)
    (home / PORT_FILE).write_text(f"{port}\n")
    deadline = time.monotonic() + timeout
    try:
        process = server_process.start(
            [str(_venv_python(venv)), "-m", "localstack.runtime.main"], home / LOG_FILE, ready=lambda: _ready(port),
            timeout=timeout, name="LocalStack", env=_server_env(venv, home, port), cwd=home, pid_file=home / PID_FILE,
        )
        _started[process.pid] = process
        if warm_kinesis:
            _warm_kinesis(port, deadline - time.monotonic())
    except BaseException as error:
        stop(home)  # kinesis-mock too, which runs in a process group of its own
        if isinstance(error, server_process.ServerError):  # its message has the log's tail
            raise LocalStackError(str(error)) from None
        if isinstance(error, LocalStackError):
            log = home / LOG_FILE
            raise LocalStackError(f"{error} (log {log}):\n{server_process.log_tail(log)}") from None
        raise
    return process.pid


def stop(home: Path | str | None = None, timeout: float = 30.0) -> bool:
    """Stop this home's LocalStack and its kinesis-mock; True if something was running.

    SIGTERM to LocalStack's process group (it then stops kinesis-mock itself), SIGKILL to whatever of
    them is left after ``timeout`` seconds. Only processes carrying this home's marker are signalled.
    """
    home = Path(home or default_home()).expanduser().resolve()
    pid = running_pid(home)
    try:
        return server_process.stop(None if pid is None else _started.pop(pid, pid), timeout,
                                   also=lambda: _marked(home))
    except server_process.ServerError as error:
        raise LocalStackError(f"LocalStack: {error}") from None
    finally:
        for name in (PID_FILE, PORT_FILE):
            with contextlib.suppress(FileNotFoundError):
                (home / name).unlink()


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="native.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "start", "stop", "status"])
    parser.add_argument("--port", type=int, default=None, help=f"default $LOCALSTACK_PORT or {DEFAULT_PORT}")
    parser.add_argument(
        "--home", type=Path, default=None, help="default $LOCALSTACK_HOME or .traffic-stream/localstack"
    )
    parser.add_argument("--timeout", type=float, default=None, help="start: seconds to wait for health (180)")
    parser.add_argument("--force", action="store_true", help="install: rebuild the virtualenv even if current")
    args = parser.parse_args(argv)
    home = Path(args.home or default_home()).expanduser().resolve()
    try:
        if args.action == "install":
            began = time.monotonic()
            current = is_installed()
            venv = install(force=args.force, verbose=True)
            state = "up to date" if current and not args.force else f"installed in {time.monotonic() - began:.1f} s"
            print(f"LocalStack virtualenv {venv}: {state}")
        elif args.action == "start":
            began = time.monotonic()
            install(verbose=True)
            installed = time.monotonic()
            pid = start(args.port, home, args.timeout)
            port = _recorded_port(home) or args.port or default_port()
            version = (health(port) or {}).get("version", "?")
            print(
                f"LocalStack {version} on {endpoint(port)} (pid {pid}, log {home / LOG_FILE}): "
                f"{', '.join(SERVICES)} ready in {time.monotonic() - installed:.1f} s"
                + (f" (+{installed - began:.1f} s install)" if installed - began > 1 else "")
            )
        elif args.action == "stop":
            stopped = stop(home)
            print("LocalStack stopped" if stopped else "LocalStack was not running")
        else:
            pid = running_pid(home)
            port = args.port or _recorded_port(home) or default_port()
            report = health(port)
            missing = not_ready(report)
            print(f"pid: {pid or 'not running'}  endpoint: {endpoint(port)}  home: {home}")
            print(json.dumps(report, indent=2) if report else "no answer from /_localstack/health")
            if missing:
                print(f"not ready: {', '.join(missing)}")
                return 1
    except LocalStackError as error:
        print(f"native.py {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
