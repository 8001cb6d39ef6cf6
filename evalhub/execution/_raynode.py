"""``python -m evalhub.execution._raynode start ...``: Ray's own ``ray`` command, on loopback.

Ray replaces ``127.0.0.1`` (``--node-ip-address``, ``--address``) with the machine's outward address
(``services.resolve_ip_for_localhost``), so a cluster asked to stay on loopback binds its GCS and
raylets to the network interface instead. evalhub's embedded cluster, and the test clusters, are
loopback only: this entry point makes Ray keep a loopback address as it is (for an address that is
not loopback nothing changes), then runs Ray's command line unchanged.
"""

from __future__ import annotations

import sys


def keep_loopback() -> None:
    """Make this process's Ray keep loopback addresses (a driver joining a loopback cluster needs it
    too: it would look for the cluster at the machine's outward address)."""
    import ray._private.services as services

    if getattr(services, "_evalhub_loopback", False):
        return
    original = services.resolve_ip_for_localhost

    def resolve(host: str) -> str:
        if host.startswith("127.") or host == "localhost":
            return "127.0.0.1"
        return str(original(host))

    services.resolve_ip_for_localhost = resolve
    services.get_node_ip_address = _loopback_ip(services.get_node_ip_address)
    services._evalhub_loopback = True  # type: ignore[attr-defined]


def _loopback_ip(original: object) -> object:
    def get_node_ip_address(address: str | None = None) -> str:
        # a node of a loopback cluster is on loopback; elsewhere Ray's own answer
        if address is None or str(address).startswith(("127.", "localhost")):
            return "127.0.0.1"
        return str(original(address))  # type: ignore[operator]

    return get_node_ip_address


def main() -> None:
    keep_loopback()
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", *sys.argv[1:]]
    ray_main()


if __name__ == "__main__":
    main()
