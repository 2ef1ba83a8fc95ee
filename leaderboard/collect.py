"""``occvla-collect``: a dataset plan (towns x routes x weathers x traffic x scenarios x seeds) driven by an agent
(the expert by default) with the data collector on, fanned out over Ray workers, merged into one dataset.

    occvla-collect --plan tiny --out /data/occvla-tiny
    occvla-collect --plan train-small --out /data/occvla-train-small --workers 2 [--resume] [key=value ...]

Plans are hydra configs in ``configs/collect/<plan>.yaml`` (the `CollectPlan` fields; overrides as
``weathers=[ClearNoon]``). Every episode (one route of one town under one weather, traffic density, scenario mode
and seed) becomes one scene whose name says all of that, so scenes from any worker merge without clashes; the
tables are rebuilt from every scene's journal at the end, and the card records the splits (by town).
One simulator per worker (libsumo is per process); workers write their scenes into the same folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.collector import CollectOptions, DataCollector, scene_name
from leaderboard.registry import AgentLoadError, load_agent_class
from leaderboard.route_runner import RouteOptions, run_route
from leaderboard.utils.signals import reclaim_sigterm, sigterm_as_interrupt
from sim.protocol import SimConfig, SimulatorError, TrafficConfig
from sim.routes import RouteConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class CollectPlan:
    """What a dataset is made of (configs/collect/*.yaml)."""

    name: str = "tiny"
    towns: list[str] = field(default_factory=lambda: ["OccTown01"])
    routes_per_town: int = 1
    route_length: list[float] = field(default_factory=lambda: [100.0, 300.0])  # metres, min and max
    weathers: list[str] = field(default_factory=lambda: ["ClearNoon"])
    traffic: list[list[int]] = field(default_factory=lambda: [[10, 10]])  # [vehicles, walkers] per density
    scenarios: list[str] = field(default_factory=lambda: ["off"])  # 'route' (the route's scenarios) | 'off'
    seeds: list[int] = field(default_factory=lambda: [0])
    agent: str = "expert"
    agent_config: str = ""
    width: int = 400
    height: int = 225
    version: str = "v1.0-trainval"
    perturb: bool = False
    max_ticks: int | None = None  # cap an episode's length (ticks at 20 Hz); None: the route's own end
    splits: dict[str, list[str]] = field(default_factory=dict)  # split -> towns; empty: every town in 'train'
    map_dir: str | None = None
    # evaluator rules the agent runs under: '1.0' | '2.0'; None: the generated routes' format (1.0). A learned
    # agent with six cameras needs 2.0 (1.0 allows four).
    leaderboard: str | None = None


@dataclass
class Episode:
    """One scene of the plan (plain data: it travels to Ray workers)."""

    route: RouteConfig
    weather: str
    traffic: tuple[int, int]
    scenarios: str
    seed: int

    @property
    def scene(self) -> str:
        return scene_name(self.route.town, self.route.route_id, self.weather, self.seed)


def load_plan(name: str, overrides: list[str] | None = None) -> CollectPlan:
    """The plan ``configs/collect/<name>.yaml`` with hydra overrides, checked against `CollectPlan`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    if not (CONFIG_DIR / "collect" / f"{name}.yaml").is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / "collect").glob("*.yaml"))
        raise ValueError(f"no collection plan '{name}' (known: {', '.join(known)})")
    fields = set(CollectPlan.__dataclass_fields__)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR / "collect"), version_base="1.3"):
        in_file = set(compose(config_name=name))
        adjusted = []
        for o in overrides or []:
            key = o.split("=", 1)[0].lstrip("+~").split(".", 1)[0]
            if key not in fields:
                raise ValueError(
                    f"unknown collection plan key '{key}' in '{o}' (known: {', '.join(sorted(fields))})"
                )
            # a plan field the file leaves at its default is overridable too (hydra wants '+' for those)
            adjusted.append("+" + o if key not in in_file and not o.startswith(("+", "~")) else o)
        cfg = compose(config_name=name, overrides=adjusted)
    schema = OmegaConf.structured(CollectPlan)
    merged = OmegaConf.merge(schema, cfg)
    plan = CollectPlan(**OmegaConf.to_container(merged, resolve=True))  # type: ignore[arg-type]
    if plan.leaderboard not in (None, "1.0", "2.0"):
        raise ValueError(f"collection plan '{name}': leaderboard must be '1.0', '2.0' or null, got {plan.leaderboard!r}")
    return plan


def plan_routes(
    town: str, count: int, length: tuple[float, float], seed: int, map_dir: str | None
) -> list[RouteConfig]:
    """`count` seeded routes of a town: shortest paths between lane points, `length` metres long."""
    import carla

    from sim.embedded.maps import load_town
    from sim.route_planner import GlobalRoutePlanner, RoutePlanningError, route_length

    cmap = load_town(town, map_dir).map
    grp = GlobalRoutePlanner(cmap, 1.0)
    cands = [
        w
        for w in cmap.generate_waypoints(10.0)
        if w.lane_type == carla.LaneType.Driving and not w.is_junction
    ]
    rng = random.Random(f"{town}:{seed}")
    out: list[RouteConfig] = []
    for _ in range(2000):
        if len(out) >= count or len(cands) < 2:
            break
        a, b = rng.sample(cands, 2)
        try:
            trace = grp.trace_route(a.transform.location, b.transform.location)
        except RoutePlanningError:
            continue
        if not length[0] <= route_length([(w.transform, o) for w, o in trace]) <= length[1]:
            continue
        kps = [a.transform, b.transform]
        out.append(
            RouteConfig(
                id=str(len(out)),
                town=town,
                keypoints=[
                    (round(t.location.x, 3), round(t.location.y, 3), round(t.location.z, 3)) for t in kps
                ],
                keypoint_yaws=[round(t.rotation.yaw, 3) for t in kps],
                weathers=[],
                format="1.0",
            )
        )
    if len(out) < count:
        raise ValueError(f"{town}: found only {len(out)} of {count} routes of {length[0]:g}-{length[1]:g} m")
    return out


def episodes(plan: CollectPlan) -> list[Episode]:
    """Every episode of the plan, in a fixed order."""
    out = []
    for town in plan.towns:
        for route in plan_routes(town, plan.routes_per_town, tuple(plan.route_length), 0, plan.map_dir):
            for ti, (veh, walk) in enumerate(plan.traffic):
                for scen in plan.scenarios:
                    r = dataclasses.replace(route, id=f"{route.id}-t{ti}-{scen}")
                    for weather in plan.weathers:
                        for seed in plan.seeds:
                            out.append(Episode(r, weather, (int(veh), int(walk)), scen, int(seed)))
    return out


def _resolve(path: str) -> str:
    """A plan's file path: as given when it exists, else relative to the repository root."""
    if not path or Path(path).exists():
        return path
    return str(CONFIG_DIR.parent / path)


class EpisodeWorker:
    """One simulator; runs episodes of a plan (a Ray actor with --workers, else in this process)."""

    def __init__(self, plan: CollectPlan, out_dir: str) -> None:
        from sim.factory import make_simulator

        self.plan, self.out_dir = plan, out_dir
        self.error = ""
        try:
            self.agent_class = load_agent_class(plan.agent)
            self.sim = make_simulator("embedded", SimConfig(map_dir=plan.map_dir, traffic=TrafficConfig()))
        except (AgentLoadError, SimulatorError) as exc:
            self.error = str(exc)

    def startup_error(self) -> str:
        return self.error

    def run(self, ep: Episode, on_keyframe: Any = None) -> tuple[str, int, str]:
        """(scene, key frames written, one-line failure or '')."""
        p = self.plan
        self.sim.config.traffic = TrafficConfig(vehicles=ep.traffic[0], walkers=ep.traffic[1], seed=ep.seed)
        collect = CollectOptions(
            out_dir=self.out_dir, width=p.width, height=p.height, version=p.version, perturb=p.perturb
        )
        opts = RouteOptions(
            agent=p.agent,
            agent_config=_resolve(p.agent_config),
            seed=ep.seed,
            weather=ep.weather,
            scenarios_mode=ep.scenarios,
            map_dir=p.map_dir,
            max_ticks=p.max_ticks,
            leaderboard=p.leaderboard,
        )
        collector = DataCollector(collect, seed=ep.seed)
        collector.on_keyframe = on_keyframe  # live key-frame count for a progress bar in this process
        outcome = run_route(self.sim, self.agent_class, ep.route, opts, observers=[collector])
        if outcome.stop_run:  # a simulator crash or a failed write (full disk): the plan stops, one line
            raise ValueError(outcome.message)
        return ep.scene, collector.n_keyframes, outcome.message

    def close(self) -> None:
        if getattr(self, "sim", None) is not None:
            self.sim.close()


def collect(
    plan: CollectPlan, out_dir: str, workers: int = 1, resume: bool = False, progress: bool = True
) -> dict:
    """Run the plan into ``out_dir``; returns the dataset card."""
    from occvla.data.writer import DatasetWriter, atomic_write_bytes, check_output_dir

    root = Path(out_dir).resolve()
    check_output_dir(root, resume)
    writer = DatasetWriter(root, plan.version)
    card_path = root / "dataset_card.json"
    import json

    eps = episodes(plan)
    # the splits and the plan's size go into the card before any scene (write_card keeps them)
    before = json.loads(card_path.read_text()) if card_path.is_file() else {}
    before.update(
        {
            "splits": plan.splits or {"train": list(plan.towns)},
            "plan": {"name": plan.name, "episodes": len(eps)},
        }
    )
    atomic_write_bytes(card_path, json.dumps(before).encode())
    done = writer.finished_scenes() if resume else set()
    todo = [e for e in eps if e.scene not in done]
    if resume and done:
        print(f"resuming: {len(eps) - len(todo)} of {len(eps)} episodes already collected", file=sys.stderr)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(eps),
            initial=len(eps) - len(todo),
            desc=f"{plan.name}: episodes",
            unit="ep",
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,
        )
    keyframes, failures, t0 = 0, [], time.perf_counter()

    def finished(result: tuple[str, int, str]) -> None:
        nonlocal keyframes
        scene, n, fail = result
        keyframes += n
        if fail:
            failures.append(f"{scene}: {fail}")
            print(f"warning: {scene}: {fail}", file=sys.stderr)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(keyframes=keyframes)

    def live(n: int) -> None:
        bar.set_postfix(keyframes=keyframes + n, refresh=False)

    if workers > 1 and len(todo) > 1:
        _run_ray(plan, str(root), todo, workers, finished)
    elif todo:
        w = EpisodeWorker(plan, str(root))
        try:
            if w.error:
                raise ValueError(w.error)
            for ep in todo:
                finished(w.run(ep, on_keyframe=live if bar is not None else None))
        finally:
            w.close()
    if bar is not None:
        bar.close()
    writer.flush()  # the tables and the card, with every worker's scenes
    card = json.loads(card_path.read_text())
    card["run"] = {"keyframes": keyframes, "seconds": time.perf_counter() - t0, "failures": failures}
    return card


def _run_ray(plan: CollectPlan, out_dir: str, todo: list[Episode], workers: int, finished: Any) -> None:
    import ray

    n = min(workers, len(todo))
    if not ray.is_initialized():
        ray.init(
            num_cpus=n,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            configure_logging=False,
        )
    reclaim_sigterm()
    actor = ray.remote(num_cpus=1)(EpisodeWorker)
    pool = [actor.remote(plan, out_dir) for _ in range(n)]
    errors = [e for e in ray.get([w.startup_error.remote() for w in pool]) if e]
    reclaim_sigterm()  # again once the workers run: Ray may install its handler as it starts them
    if errors:
        raise ValueError(errors[0])
    queue, pending, idle = list(todo), {}, list(pool)
    try:
        while queue or pending:
            while idle and queue:
                w = idle.pop()
                pending[w.run.remote(queue.pop(0))] = w
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                idle.append(pending.pop(ref))
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the worker's one line, not Ray's traceback
                    cause = getattr(exc, "cause", None)
                    raise ValueError(str(cause) if cause is not None else str(exc).splitlines()[-1]) from None
                finished(result)
    except BaseException:
        # a failure or Ctrl-C: stop the workers now (their open scenes stay unfinished, for --resume)
        for w in pool:
            ray.kill(w)
        raise
    ray.get([w.close.remote() for w in pool])
    for w in pool:
        ray.kill(w)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="occvla-collect", description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default="tiny", help="a config of configs/collect/ (tiny, train-small, ...)")
    ap.add_argument(
        "--out", required=True, help="the dataset folder (new, or an unfinished one with --resume)"
    )
    ap.add_argument("--workers", type=int, default=1, help="Ray workers, one simulator each")
    ap.add_argument("--resume", action="store_true", help="continue a dataset: skip its finished episodes")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument(
        "--merge", nargs="+", metavar="DATASET", help="instead of collecting: merge these datasets into --out"
    )
    ap.add_argument("overrides", nargs="*", help="hydra overrides of the plan, e.g. 'seeds=[0,1]'")
    args = ap.parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    from occvla.data.writer import DatasetWriteError, merge_datasets

    if args.merge:
        try:
            card = merge_datasets(args.merge, args.out)
        except (ValueError, OSError, DatasetWriteError) as exc:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        c = card["counts"]
        print(f"{args.out}: {c['scenes']} scenes, {c['samples']} key frames from {len(args.merge)} datasets")
        return 0
    try:
        plan = load_plan(args.plan, args.overrides)
        with sigterm_as_interrupt():
            card = collect(plan, args.out, args.workers, args.resume, not args.no_progress)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the finished episodes are in {args.out}; continue with --resume", file=sys.stderr
        )
        return 130
    except (ValueError, DatasetWriteError, SimulatorError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - hydra's override errors and the like: one line
        if type(exc).__module__.startswith(("hydra", "omegaconf")):
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        raise
    c = card["counts"]
    print(
        f"{args.out}: {c['scenes']} scenes, {c['samples']} key frames, {c['annotations']} boxes, "
        f"{card['size_bytes'] / 1e6:.1f} MB ({card['run']['keyframes']} key frames in "
        f"{card['run']['seconds']:.0f} s)",
        file=sys.stderr,
    )
    return 1 if card["run"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
