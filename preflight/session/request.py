"""Arguments as data -> a `LiveRequest`: inventory, selection, overrides, timeouts, SSH options.

Here, not in `preflight.session`, because choosing the transport imports it (`FanoutOptions`,
`SshOptions`): the CLI calls this, the TUI is handed the request it made and never imports this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from preflight.session import LiveRequest

STATE_PROBES_S = 90.0  # room for the state probes before the level's tests (their slowest timeout is 30 s)


@dataclass(frozen=True)
class RunArgs:
    """What a caller says about a live run (the CLI fills it from its flags; see `preflight run --help`)."""

    inventory: str | None = None
    ansible_inventory: str | None = None  # a SOURCE for `ansible-inventory -i SOURCE --list`
    host_list: str | None = None  # comma-separated [user@]host[:port]
    limit: str | None = None
    forks: int = 32
    connect_timeout: float | None = None
    timeout: float | None = None
    known_hosts: tuple[str, ...] = ()
    accept_new_hostkeys: bool = False
    nccl: bool = False
    mlxlink: bool = False  # also run the mlxlink probe (check ib.link_quality)
    level: str = "quick"  # quick | standard | deep: the active tests and their per-node budget (docs/levels.md)
    budget: float | None = None  # seconds of active tests per node (default: the level's)
    force: bool = False  # run the active tests even where the GPUs have compute processes
    save: str | None = None
    expect: tuple[str, ...] = ()  # --expect KEY=VALUE, applied to every inventory node
    accept: tuple[str, ...] = ()  # --accept CHECK_OR_FACT=WHY
    shard: str | None = None  # --shard K/N: this controller's slice of the selection (preflight/inventory/shard.py)

    @classmethod
    def of(cls, source: Any) -> RunArgs:
        """From any object with these attributes (an argparse Namespace); absent ones keep their defaults."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if hasattr(source, f.name) and getattr(source, f.name) is not None:
                value = getattr(source, f.name)
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def load_selection(args: RunArgs) -> Any:
    """The inventory (or `-H` host list), narrowed by `limit`, then to `--shard`; InventoryError with the reason."""
    return load_sharded(args)[1]


def load_sharded(args: RunArgs) -> tuple[Any, Any, dict[str, Any] | None]:
    """(the whole selection; it narrowed to `--shard K/N` when given; the shard's record, else None).

    The shard is cut from the selection after `limit`: controllers that merge later give the same `-l`."""
    inv = _load_limited(args)
    if not args.shard:
        return inv, inv, None
    import hashlib
    from pathlib import Path

    from preflight.inventory.shard import apply_shard, parse_shard

    path = Path(args.inventory) if args.inventory and args.inventory != "-" else None
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None
    return (inv, *apply_shard(inv, parse_shard(args.shard), inventory_sha256=digest))


def _load_limited(args: RunArgs) -> Any:
    from preflight.inventory import inventory_from_hosts, load_inventory

    if args.inventory:
        inv = load_inventory(args.inventory)
    elif args.ansible_inventory:
        from preflight.inventory.ansible_json import run_ansible_inventory

        inv = run_ansible_inventory(args.ansible_inventory)
    else:
        inv = inventory_from_hosts([h for h in (args.host_list or "").split(",") if h.strip()])
    return inv.select(args.limit) if args.limit else inv


def live_request(args: RunArgs) -> LiveRequest:
    """Everything resolved before any SSH; raises ValueError (InventoryError included) with the reason.

    The `--expect`/`--accept` overrides are put on the inventory's nodes here, so the bundle a live run
    saves records them with their source.
    """
    from preflight.collect.probes import LEVEL_BUDGET_S, LEVELS, NCCL_PROBES, PROBES_BY_ID
    from preflight.overrides import parse_overrides
    from preflight.session import peer_names
    from preflight.transport.fanout import FanoutOptions
    from preflight.transport.ssh import SshOptions

    if args.level not in LEVELS:
        raise ValueError(f"--level {args.level!r}: choose {', '.join(LEVELS)}")
    if args.budget is not None and args.budget <= 0:
        raise ValueError(f"--budget {args.budget:g}: give seconds > 0")
    whole, inv, shard = load_sharded(args)
    nodes = parse_overrides(args.expect, args.accept).apply_to_nodes(inv.nodes)
    if args.connect_timeout or args.timeout:
        nodes = [dataclasses.replace(n, **({"connect_timeout_s": args.connect_timeout} if args.connect_timeout else {}),
                                     **({"command_timeout_s": args.timeout} if args.timeout else {})) for n in nodes]
    include = (*(NCCL_PROBES if args.nccl else ()), *LEVELS[args.level], *(("mlxlink",) if args.mlxlink else ()))
    # --nccl on a level without the all-reduce adds its typical time to the level's budget
    extra = sum(PROBES_BY_ID[p].est_s for p in include if p not in LEVELS[args.level])
    budget = float(args.budget if args.budget is not None else LEVEL_BUDGET_S[args.level] + extra)
    active = {"level": args.level, "budget_s": budget, "force": args.force}
    if args.level != "quick" or args.budget is not None or args.nccl:  # state probes first, then the tests
        nodes = [dataclasses.replace(n, command_timeout_s=max(n.command_timeout_s, budget + STATE_PROBES_S))
                 for n in nodes]
    ssh = SshOptions(known_hosts=tuple(inv.known_hosts) + tuple(args.known_hosts),
                     accept_new_hostkeys=args.accept_new_hostkeys, ssh_config_path=inv.ssh_config)
    return LiveRequest(tuple(nodes), FanoutOptions(forks=max(1, args.forks), ssh=ssh),
                       tuple(dict.fromkeys(include)), args.inventory or args.ansible_inventory, args.save,
                       bool(inv.slurm), active, shard=shard,
                       peers=peer_names(whole.nodes) if shard is not None else None)
