"""The student's Jupyter Lab (`tito module start NN --open`, `tito next --open`): what the
launch is made of, and the real server it starts, checked through Jupyter's REST API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from autograder.lab import NBGRADER_LAB_EXTENSION, NBGRADER_SERVER_EXTENSIONS
from tests.conftest import invoke

NOTEBOOK = "modules/01_setup/01_setup.ipynb"


def _started(workspace: Path):
    from autograder.workspace import Workspace

    invoke("module", "start", "01")
    return Workspace.open(workspace)


def test_the_launch_roots_the_lab_at_the_workspace_with_nbgrader_off(workspace, monkeypatch):
    from tito.commands.module import jupyter_command

    ws = _started(workspace)
    root = workspace.resolve()
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", "/elsewhere/jupyter")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    lab = jupyter_command(ws, root / NOTEBOOK)

    assert lab.argv[1:] == ["-m", "jupyterlab", NOTEBOOK] and lab.cwd == root
    assert lab.env["PYTHONPATH"].split(os.pathsep)[0] == str(root)
    assert lab.env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(root / ".tito/jupyter"), "/elsewhere/jupyter"]
    server = lab.config["jupyter_server_config.json"]
    assert server["ServerApp"]["root_dir"] == str(root)
    assert server["LabApp"]["default_url"] == f"/lab/tree/{NOTEBOOK}"
    assert "allow_root" not in server["ServerApp"]
    assert lab.config["labconfig/page_config.json"] == {"disabledExtensions": {"@jupyter/nbgrader": True}}

    # every nbgrader server extension this installation enables is turned off
    from jupyter_core.paths import jupyter_config_path

    installed = {
        name
        for folder in jupyter_config_path()
        for path in Path(folder, "jupyter_server_config.d").glob("*.json")
        for name in json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {})
        if name.startswith("nbgrader")
    }
    assert installed, "nbgrader's server extensions are installed with the course"
    assert server["ServerApp"]["jpserver_extensions"] == {name: False for name in sorted(installed)}

    monkeypatch.setattr(os, "geteuid", lambda: 0)  # as root, in a container
    assert jupyter_command(ws, root / NOTEBOOK).config["jupyter_server_config.json"]["ServerApp"]["allow_root"] is True


def test_open_writes_the_launch_config_and_runs_it(workspace, monkeypatch):
    import tito.commands.module as module_command

    calls = []
    monkeypatch.setattr(module_command.subprocess, "run", lambda argv, **kw: calls.append((argv, kw)))
    invoke("module", "start", "01", "--open", expected_output=f"Opening {NOTEBOOK}")
    ((argv, options),) = calls
    config = workspace.resolve() / ".tito/jupyter"
    assert options["env"]["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(config)
    written = json.loads((config / "jupyter_server_config.json").read_text())
    assert written["ServerApp"]["root_dir"] == str(workspace.resolve())
    assert json.loads((config / "labconfig/page_config.json").read_text())["disabledExtensions"] == {
        NBGRADER_LAB_EXTENSION: True
    }


# --- the real thing ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Server:
    def __init__(self, port: int, token: str):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, method: str, path: str, body: dict | None = None):
        """(status, parsed JSON or text) of one request with the server's token."""
        request = urllib.request.Request(
            self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def run_code(self, kernel_id: str, code: str) -> str:
        """What `code` prints, run in the kernel through its websocket (Jupyter's protocol)."""
        import websocket

        channel = websocket.create_connection(
            f"ws://{self.base.removeprefix('http://')}/api/kernels/{kernel_id}/channels?token={self.token}",
            timeout=120,
        )
        msg_id = uuid.uuid4().hex
        try:
            channel.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                           "session": uuid.uuid4().hex, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False},
            }))
            printed = []
            while True:
                message = json.loads(channel.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] in ("stream", "error"):
                    printed.append(message["content"].get("text") or "\n".join(message["content"]["traceback"]))
                if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                    return "".join(printed)
        finally:
            channel.close()


def _page_config(html: str) -> dict:
    start = html.index('<script id="jupyter-config-data" type="application/json">')
    return json.loads(html[html.index(">", start) + 1: html.index("</script>", start)])


@pytest.mark.slow
def test_the_students_lab_over_its_rest_api(workspace, tmp_path, monkeypatch):
    from tito.commands.module import jupyter_command

    ws = _started(workspace)
    root = workspace.resolve()
    # the machine's own Jupyter settings and runtime files stay out of it, and it of them
    for name, folder in (("JUPYTER_CONFIG_DIR", "user-config"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    lab = jupyter_command(ws, root / NOTEBOOK)
    lab.write_config()
    port, token = _free_port(), uuid.uuid4().hex
    headless = ["--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            lab.argv + headless, env=lab.env, cwd=lab.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = _Server(port, token)
    try:
        for _ in range(240):  # wait for it to answer (or to have died)
            assert process.poll() is None, f"Jupyter Lab exited {process.returncode}:\n{log.read_text()}"
            try:
                if server.call("GET", "/api/status")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"Jupyter Lab never answered:\n{log.read_text()}")

        # rooted at the workspace: every module's folder and the student's package; the notebook
        status, listing = server.call("GET", "/api/contents")
        assert status == 200 and {"modules", "tinytorch"} <= {item["name"] for item in listing["content"]}
        status, notebook = server.call("GET", f"/api/contents/{NOTEBOOK}?content=0")
        assert status == 200 and notebook["type"] == "notebook"

        # the page it opens is the module's notebook; nbgrader's lab extension is disabled
        status, page = server.call("GET", "/")
        assert status == 200
        config = _page_config(page)
        assert config["treePath"] == NOTEBOOK and config["serverRoot"] == str(root)
        assert NBGRADER_LAB_EXTENSION in config["disabledExtensions"]
        status, extensions = server.call("GET", "/lab/api/extensions")
        assert status == 200
        assert [e["enabled"] for e in extensions if e["name"] == "jupyter-nbgrader"] == [False]

        # nbgrader's server extensions are not loaded: none of their pages or handlers exist
        for path in ("/formgrader", "/assignments?course_id=tinytorch", "/formgraders"):
            assert server.call("GET", path)[0] == 404, path

        # a kernel for the notebook, as the lab starts one, imports the student's package
        status, session = server.call("POST", "/api/sessions", {
            "path": NOTEBOOK, "type": "notebook", "name": "01_setup.ipynb", "kernel": {"name": "python3"},
        })
        assert status == 201, session
        printed = server.run_code(session["kernel"]["id"], "import os, tinytorch\nprint(tinytorch.__file__)\nprint(os.getcwd())")
        package, cwd = printed.split()
        assert Path(package) == root / "tinytorch" / "__init__.py", printed
        assert Path(cwd) == root / "modules/01_setup"
        assert server.call("DELETE", f"/api/sessions/{session['id']}")[0] == 204
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    text = log.read_text()
    assert "[E " not in text and "course directory root" not in text, text
    assert not any(name in text for name in NBGRADER_SERVER_EXTENSIONS), text
