"""The ``backend`` section: its defaults, and what validate refuses for ``kind: ray``."""

from __future__ import annotations

import pytest

from orchestrator.config import parse_config
from orchestrator.preflight import filesystem_of, preflight
from swarm_core.errors import ConfigError

BASE = """\
name: demo
goal: "Write a haiku"
root: manager
llm: {provider: replay, cassette: demo.cassette.yaml}
bus: {transport: tcp}
agents:
  manager:
    role: "Delegate."
    commands: [start_agent, task_complete]
    can_start: [writer]
  writer:
    role: "Write."
    commands: [write_to_file, task_complete]
"""


def _cfg(text: str, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    (tmp_path / "demo.cassette.yaml").write_text("manager: [{command: {name: task_complete, args: {}}}]\n")
    return parse_config(text, source=str(path))


def test_the_default_backend_is_local(tmp_path):
    """Without a backend section a swarm runs on this machine with the documented ray defaults."""
    b = _cfg(BASE, tmp_path).backend
    assert (b.kind, b.address, b.local_nodes, b.node_resource, b.agents_per_node, b.placement,
            b.kill_timeout_ms) == ("local", "auto", 2, "swarm_node", 64, "spread", 300)


def test_ray_with_an_ipc_bus_is_refused_on_the_backend_line(tmp_path):
    """kind ray with the (default) ipc bus is a config error naming the backend line and the fix."""
    text = BASE.replace("bus: {transport: tcp}\n", "") + "backend: {kind: ray}\n"
    with pytest.raises(ConfigError, match=r"s.yaml:13: backend: .*kind ray needs bus: \{transport: tcp\}"):
        _cfg(text, tmp_path)


def test_a_placement_naming_an_unknown_role_is_refused(tmp_path):
    """{ROLE: RESOURCE} must name roles of the swarm."""
    text = BASE + "backend: {kind: ray, placement: {poet: swarm_node_1}}\n"
    with pytest.raises(ConfigError, match="placement names undefined role\\(s\\) poet"):
        _cfg(text, tmp_path)


@pytest.mark.parametrize("field,value", [("address", "'not an address'"), ("placement", "scatter"),
                                         ("kill_timeout_ms", "0"), ("agents_per_node", "0")])
def test_bad_backend_values_name_their_field(tmp_path, field, value):
    """An address, placement or number the backend cannot use is refused naming backend.<field>."""
    with pytest.raises(ConfigError, match=f"backend.{field}"):
        _cfg(BASE + f"backend: {{kind: ray, {field}: {value}}}\n", tmp_path)


def test_ray_without_the_extra_installed_is_refused(tmp_path, monkeypatch):
    """kind ray on a machine without Ray says which extra to install."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ConfigError, match="backend.kind: ray is not installed; install the extra: "
                                          "pip install 'swarm\\[ray\\]'"):
        preflight(_cfg(BASE + "backend: {kind: ray, address: local}\n", tmp_path))


@pytest.fixture
def ray_installed(monkeypatch):
    """These checks come after the one for Ray itself: pretend it is installed (it is an optional extra)."""
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec
    fake = importlib.machinery.ModuleSpec("ray", None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == "ray" else real(name, *a))


def test_a_private_cluster_passes_validate(tmp_path, ray_installed):
    """address: local (a private cluster on this machine) needs no shared filesystem."""
    preflight(_cfg(BASE + "backend: {kind: ray, address: local}\n", tmp_path))


def test_a_real_cluster_needs_a_bus_other_nodes_can_reach(tmp_path, ray_installed):
    """With a cluster address, a loopback bus host is refused naming bus.host."""
    with pytest.raises(ConfigError, match="s.yaml:5: bus.host: 127.0.0.1 is not reachable from other nodes"):
        preflight(_cfg(BASE + "backend: {kind: ray, address: '10.0.0.5:6379'}\n", tmp_path))


def test_a_real_cluster_needs_a_shared_workspace(tmp_path, ray_installed):
    """With a cluster address, a workspace on a local filesystem is refused, naming its filesystem."""
    text = BASE.replace("bus: {transport: tcp}", "bus: {transport: tcp, host: 10.0.0.4}")
    cfg = _cfg(text + "backend: {kind: ray, address: auto}\n", tmp_path)
    fstype = filesystem_of(str(tmp_path))
    if fstype.startswith(("nfs", "fuse", "ceph", "9p", "virtiofs")):
        pytest.skip(f"this tmp dir is on a shared filesystem ({fstype})")
    with pytest.raises(ConfigError, match=f"workspace must be a path visible on every node.*on {fstype}"):
        preflight(cfg)
