"""The embedded single-node Ray a sweep starts refuses clients without its token (Ray's ports listen on
every interface, SECURITY.md). A real sweep driver, real Ray processes, raw gRPC requests to them."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]


def _group_processes(pgid: int) -> dict[str, list[str]]:
    """``{comm: argv}`` of the processes in process group ``pgid``, and ``{comm + ".pid": [pid, ...]}``
    (every process of that name: a process forking a worker briefly has a child of its own name)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            out[comm] = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            out.setdefault(comm + ".pid", []).append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return out


def _listening_ports(pids: list[str]) -> set[int]:
    """TCP ports the processes ``pids`` listen on (their socket inodes matched against /proc/net/tcp{,6})."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # ended meanwhile
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def _call(port: str, method: str, token: str | None) -> grpc.StatusCode:
    """One raw unary gRPC call (an empty request) to 127.0.0.1:port; its status code."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(b"", timeout=20, metadata=[("authorization", f"Bearer {token}")] if token else None)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


def test_embedded_ray_refuses_clients_without_the_token_while_a_sweep_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}  # the default settings
    token_file = Path("~/.ray/auth_token").expanduser()
    had_token_file = token_file.exists()
    env["RSNG_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "sweeps" / "sparsity.py"),
            "--smoke",
            "--ray-address",
            "local",
            "--storage",
            str(tmp_path / "results"),
            "--max-concurrent",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        procs = {}
        while time.time() < deadline and proc.poll() is None:
            procs = _group_processes(proc.pid)
            if "gcs_server" in procs and "raylet" in procs and any(c.startswith("ray::") for c in procs):
                break  # Ray is up and has started a worker
            time.sleep(0.5)
        assert proc.poll() is None and "gcs_server" in procs and "raylet" in procs, proc.communicate()[0][-3000:]
        gcs_env = dict(
            kv.split("=", 1)
            for kv in Path(f"/proc/{procs['gcs_server.pid'][0]}/environ").read_text().split("\0")
            if "=" in kv
        )
        assert gcs_env.get("RAY_AUTH_MODE") == "token"
        token = gcs_env.get("RAY_AUTH_TOKEN") or token_file.read_text().strip()
        for name, method in (
            ("gcs_server", "/ray.rpc.NodeInfoGcsService/GetClusterId"),
            ("raylet", "/ray.rpc.NodeManagerService/GetNodeStats"),
        ):
            listen_by = time.time() + 60  # on a loaded machine a server may open its ports late
            while not (ports := _listening_ports(procs[name + ".pid"])) and time.time() < listen_by:
                time.sleep(0.5)
                procs = _group_processes(proc.pid)
            answered = [port for port in ports if _call(port, method, token) == grpc.StatusCode.OK]
            assert answered, (name, ports)  # the server answers this request when it carries the token ...
            for port in ports:  # ... and no port of it answers without the token, or with a wrong one
                assert _call(port, method, None) != grpc.StatusCode.OK, (name, port)
                assert _call(port, method, "0" * 64) != grpc.StatusCode.OK, (name, port)
            for port in answered:
                assert _call(port, method, None) == grpc.StatusCode.UNAUTHENTICATED, (name, port)
        assert proc.poll() is None  # the sweep was running all along
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if not had_token_file:  # a per-run token lives in the environment only: nothing written to ~/.ray
        assert "RAY_AUTH_TOKEN" in gcs_env and not token_file.exists()
