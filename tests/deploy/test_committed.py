"""deploy/kubernetes is exactly what `souk render kubernetes` writes for the default topology:
nobody edits the generated files by hand, and a change to the topology, the mesh policy or the
renderer shows up in the diff of the manifests."""

from __future__ import annotations

from souk.kubernetes import GENERATED, render
from souk.topology import load_topology

from .conftest import DEPLOY, ROOT


def test_the_committed_manifests_are_the_rendering_of_the_default_topology() -> None:
    topology = load_topology(ROOT / "cli" / "src" / "souk" / "default_topology.yaml")
    expected = render(topology)
    committed = {
        str(path.relative_to(DEPLOY)): path.read_text()
        for name in GENERATED
        for path in ([DEPLOY / name] if (DEPLOY / name).is_file() else (DEPLOY / name).rglob("*"))
        if path.is_file()
    }
    stale = sorted(name for name in expected if committed.get(name) != expected[name])
    extra = sorted(set(committed) - set(expected))
    assert (stale, extra) == ([], []), "run `souk render kubernetes` and commit deploy/kubernetes"
