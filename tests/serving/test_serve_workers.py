"""`fusiondx serve --workers 2` as a user starts it: two processes, each on its own
SO_REUSEPORT socket, both answering; stopped cleanly by SIGTERM; a port already taken is a
clear error, not a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

psutil = pytest.importorskip("psutil")
httpx = pytest.importorskip("httpx")
if not hasattr(socket, "SO_REUSEPORT"):
    pytest.skip("no SO_REUSEPORT on this platform", allow_module_level=True)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(run: Path, port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "fusiondx", "serve", str(run), "--port", str(port)]
    env = {**os.environ, "FUSIONDX_TOKEN": ""}
    return subprocess.Popen(
        [*cmd, "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_share_the_connections_and_stop_on_sigterm(
    served_run: Path, full_cases: Any, upload: Any
) -> None:
    port = _port()
    proc = _serve(served_run, port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) >= 2
        before = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
        files, data = upload(full_cases.iloc[0])
        # 16 separate connections: the kernel hashes each to one of the two sockets.
        for _ in range(16):
            with httpx.Client(base_url=url, timeout=60) as client:
                r = client.post("/predict", files=files, data=data)
                assert r.status_code == 200, r.text
        busy = [w.pid for w in workers if sum(w.cpu_times()[:2]) - before[w.pid] > 0.02]
        assert len(busy) == 2, (before, busy)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # Bounded wait: multiprocessing's resource tracker is a child too, and it leaves only once it
    # sees the server's end of its pipe close, a moment after the server itself has exited.
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [(p.pid, p.name(), p.cmdline()) for p in alive]


def test_a_port_in_use_is_a_clear_error(served_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc = _serve(served_run, int(taken.getsockname()[1]))
        out, _ = proc.communicate(timeout=180)
    assert proc.returncode != 0
    said = " ".join(out.split())
    assert "Cannot listen on 127.0.0.1" in said and "choose another --port" in said
    assert "Traceback" not in out
