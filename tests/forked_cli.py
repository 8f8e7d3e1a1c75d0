"""`vae-zoo` processes forked from one that imported the command line and TensorFlow once.

A test that needs the command as a process of its own (a worker of a cluster, a run to SIGKILL)
pays ~6 s of CPU per fresh interpreter for `import tensorflow` + TFP. The server started here
imports them once, runs no TensorFlow op (forking is safe before TensorFlow's runtime starts:
the imports leave two idle threads, waiting on a condition variable with no lock held; the
fault writers rely on this too) and forks a fresh process per command: `cli.main(ARGS)` in its
own working folder and environment, its output in files, its exit status as the console
script's (`sys.exit(main())`). The console script itself stays exercised by the tests that run
`SCRIPT`.

    server = Server(); process = server.start(["train", ...], cwd=..., env=...)
    process.communicate(timeout=60) -> (stdout, stderr); process.returncode; process.send_signal(...)
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def say(line: str) -> None:
    """One line on stdout in one write(2): the lines of concurrent processes never interleave (a pipe
    writes up to PIPE_BUF bytes atomically; `print` writes the text and the newline apart)."""
    os.write(1, (line + "\n").encode())


def _run_command(request: dict) -> int:
    """In the forked child: the command of `request`, as the console script runs it."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, name in ((1, "out"), (2, "err")):
        os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.argv = ["vae-zoo", *request["argv"]]
    from vae_zoo import cli

    try:
        code = cli.main(request["argv"])
    except SystemExit as stop:
        code = stop.code
    except BaseException:  # an uncaught error: its traceback and status 1, as in the console script
        import traceback

        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code or 0


def serve() -> None:
    """The server's loop: a JSON request per stdin line -> "pid PID"; "exit PID STATUS" when it ends."""
    import vae_zoo

    vae_zoo._import_tensorflow_quietly(initialize=False)  # TensorFlow and TFP, no op
    import vae_zoo.cli  # noqa: F401
    import vae_zoo.training.distributed  # noqa: F401
    import vae_zoo.training.train  # noqa: F401

    say("ready")
    children, pending, open_ = set(), b"", True
    while open_ or children:
        if open_ and select.select([0], [], [], 0.02)[0]:
            chunk = os.read(0, 1 << 16)
            open_, pending = bool(chunk), pending + chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        code = _run_command(json.loads(line))
                    finally:
                        os._exit(code)
                children.add(pid)
                say(f"pid {pid}")
        elif not open_:
            time.sleep(0.02)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


class Forked:
    """A `subprocess.Popen`-like handle of one forked command (text output)."""

    def __init__(self, server: "Server", pid: int, out: Path, err: Path):
        self.server, self.pid, self._out, self._err = server, pid, out, err

    @property
    def returncode(self) -> int | None:
        return self.server.exits.get(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self.server.changed:
            if not self.server.changed.wait_for(lambda: self.pid in self.server.exits, timeout):
                raise subprocess.TimeoutExpired(f"vae-zoo (pid {self.pid})", timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self._out.read_text(), self._err.read_text()


class Server:
    """One server process; `start` forks a command from it."""

    def __init__(self):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        assert self.process.stdout.readline().strip() == "ready"
        self.folder = Path(tempfile.mkdtemp(prefix="forked-cli-"))
        self.exits: dict[int, int] = {}
        self.started: list[int] = []
        self.changed = threading.Condition()
        self._lock = threading.Lock()  # one request, one "pid" answer at a time
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for line in self.process.stdout:
            word, pid, *status = line.split()
            with self.changed:
                if word == "pid":  # a number the system gave an ended child before may come again
                    self.started.append(int(pid))
                    self.exits.pop(int(pid), None)
                else:
                    self.exits[int(pid)] = int(status[0])
                self.changed.notify_all()

    def start(self, argv, cwd=None, env=None) -> Forked:
        with self._lock:
            count = len(self.started)
            out, err = (self.folder / f"{count}.{name}" for name in ("out", "err"))
            request = {"argv": [str(a) for a in argv], "cwd": str(cwd or os.getcwd()),
                       "env": dict(os.environ if env is None else env), "out": str(out), "err": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            with self.changed:
                assert self.changed.wait_for(lambda: len(self.started) > count, 60), "the server forked nothing"
                pid = self.started[count]
        return Forked(self, pid, out, err)

    def run(self, argv, cwd=None, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
        process = self.start(argv, cwd, env)
        try:
            out, err = process.communicate(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        return subprocess.CompletedProcess(argv, process.returncode, out, err)

    def close(self) -> None:
        self.process.stdin.close()
        deadline = time.time() + 60
        while self.process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    serve()
    os._exit(0)  # without the interpreter's teardown of TensorFlow (seconds)
