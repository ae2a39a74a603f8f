"""``hearth-agent``: ``init`` writes the config file from a registry download; ``run`` runs.

hearth-agent init hearth-flat-pi-1.json -o /etc/hearth/agent.json
hearth-agent run -c /etc/hearth/agent.json
hearth-agent run -c agent.json --simulate      # any machine: mock pins, fake sysfs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from gpiozero.exc import GPIOZeroError

from hearth_agent.agent import Agent
from hearth_agent.board import Board
from hearth_agent.config import AgentConfig, generate
from hearth_agent.simulate import SimulatedWorld
from hearth_device.config import ConfigError

__all__ = ["build", "main"]

log = logging.getLogger("hearth_agent")


def build(config: AgentConfig, world: SimulatedWorld | None = None) -> Agent:
    """The agent for ``config``; with ``world``, on its mock pins and fake files."""
    if world is None:
        board = Board.build(config.hardware, config.safety)
        return Agent(config, board)
    config = world.configure(config)
    board = Board.build(config.hardware, config.safety, pin_factory=world.pins, adc=world.adc)
    return Agent(config, board)


def _init(args: argparse.Namespace) -> int:
    download = json.loads(Path(args.download).read_text(encoding="utf-8"))
    text = json.dumps(generate(download), indent=2) + "\n"
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    out.chmod(0o600)  # it holds the device's password
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: edit 'hardware' to match your wiring (docs/devices/pi.md)")
    return 0


def _run(args: argparse.Namespace) -> int:
    config = AgentConfig.load(Path(args.config))
    world = None
    if args.simulate:
        root = Path(args.sim_root or tempfile.mkdtemp(prefix="hearth-agent-sim-"))
        world = SimulatedWorld(root)
        if args.outbox is None and config.outbox.startswith("/var/lib/"):
            config = dataclasses.replace(config, outbox=str(root / "outbox.jsonl"))
        if config.clock == "timesyncd":  # a workstation: trust its clock
            config = dataclasses.replace(config, clock="system")
        log.info("simulating: mock pins, fake sysfs under %s", root)
    if args.outbox is not None:
        config = dataclasses.replace(config, outbox=args.outbox)
    if args.sample_s is not None:
        config = dataclasses.replace(config, sample_s=args.sample_s)
    agent = build(config, world)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run(stop, world.drift if world is not None else None)
    log.info("stopped: relays off")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="hearth-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write the config file from a registry download")
    init.add_argument("download", help="the JSON config download of the device")
    init.add_argument("-o", "--output", default="/etc/hearth/agent.json")
    run = commands.add_parser("run", help="run the agent")
    run.add_argument("-c", "--config", default="/etc/hearth/agent.json")
    run.add_argument("--simulate", action="store_true", help="mock pins and a fake sysfs")
    run.add_argument("--sim-root", help="where the fake sysfs goes (default: a temp folder)")
    run.add_argument("--outbox", help="the outbox file (overrides the config)")
    run.add_argument("--sample-s", type=float, help="seconds between samples (overrides)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _init(args) if args.command == "init" else _run(args)
    except (ConfigError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except GPIOZeroError as exc:
        log.error("no GPIO here (%s): run on a Raspberry Pi, or with --simulate", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
