"""The closed-loop robustness suite: one agent over a grid of weathers x occlusion scenarios, and of sensor faults x
severities on ClearNoon, on the suite's routes with fixed seeds.

    python leaderboard/run.py --agent expert --suite robustness-quick --workers 2 [--checkpoint DIR/results.json]

Each cell (weather, scenario, fault, severity) runs every route of the suite. Route runs fan out over --workers
(Ray, one simulator each) and land in one results JSON in the leaderboard's format; each record carries its
`cell` and a route id with the cell in it, so cells never collide, and `--resume` skips finished (cell, route)
runs. A route keeps its traffic seed in every cell (RouteConfig.seed_key), so a cell differs from the baseline
only by its weather, scenario or fault. Beside the results: a markdown table and heatmaps of the driving score
per cell relative to the same routes in ClearNoon without scenario or fault (the resilience rate), the collision
rate in the occlusion scenarios, and the agent's mean resilience over all non-baseline cells.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from leaderboard.evaluator import (
    EvalConfig,
    EvaluationError,
    RouteWorker,
    _check_towns,
    _make_sim,
    _preflight,
    build_route_list,
    close_workers,
)
from leaderboard.registry import AgentLoadError, load_agent_class
from leaderboard.results import ResultsFile, atomic_write_json
from leaderboard.route_runner import RouteOptions, RouteOutcome, run_route
from leaderboard.utils.signals import reclaim_sigterm
from leaderboard.rules import rules_of_run
from sim.protocol import SimulatorError
from sim.routes import RouteConfig, RouteFileError

ROOT = Path(__file__).resolve().parents[1]
SUITE_DIR = ROOT / "configs" / "suite"
BASE_WEATHER = "ClearNoon"
NONE = "none"


class SuiteError(ValueError):
    """A bad suite definition (one line)."""


@dataclass(frozen=True)
class Cell:
    """One grid cell: what differs from the baseline run of the same routes."""

    weather: str = BASE_WEATHER
    scenario: str = NONE  # an occlusion scenario id added along each route, or 'none'
    fault: str = NONE  # a robustness fault name (scenarios.sensor_faults.SEVERITIES), or 'none'
    severity: int = 0  # 1-3 with a fault, 0 without

    @property
    def key(self) -> str:
        """A compact unique id (used in route ids)."""
        sc = self.scenario.replace("/", ".")
        return f"{self.weather}~{sc}~{self.fault}{self.severity if self.fault != NONE else ''}"

    @property
    def is_baseline(self) -> bool:
        return self == Cell()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SuiteConfig:
    """A robustness suite (configs/suite/<name>.yaml)."""

    name: str
    routes: str | None = None  # route XML (None: the built-in routes)
    routes_subset: str = ""
    weathers: list[str] = field(default_factory=lambda: [BASE_WEATHER])
    scenarios: list[str] = field(default_factory=list)  # occlusion scenario ids ('none' is always included)
    faults: list[str] = field(default_factory=list)  # fault names, run on ClearNoon without scenario
    severities: list[int] = field(default_factory=lambda: [1, 2, 3])
    seed: int = 0
    scenarios_mode: str = (
        "off"  # the routes' own scenarios: off, so a cell isolates its weather/scenario/fault
    )
    vehicles: int = 40
    walkers: int = 20
    max_ticks: int | None = None  # cap on each route's ticks (tests)
    description: str = ""

    def cells(self) -> list[Cell]:
        """Baseline first, then weathers x scenarios, then faults x severities (deterministic order)."""
        out = [Cell()]
        for w in self.weathers:
            for s in [NONE, *self.scenarios]:
                c = Cell(w, s)
                if c not in out:
                    out.append(c)
        for f in self.faults:
            for sev in self.severities:
                out.append(Cell(BASE_WEATHER, NONE, f, int(sev)))
        return out

    def validate(self) -> None:
        from scenarios import registered_ids
        from scenarios.sensor_faults import SEVERITIES
        from scenarios.weather_sets import named_weather

        for w in self.weathers:
            try:
                named_weather(w)
            except ValueError as exc:
                raise SuiteError(f"suite {self.name}: {exc}") from None
        known = set(registered_ids("scenario"))
        for s in self.scenarios:
            if s not in known:
                raise SuiteError(f"suite {self.name}: unknown scenario '{s}'")
        for f in self.faults:
            if f not in SEVERITIES:
                raise SuiteError(f"suite {self.name}: unknown fault '{f}' (valid: {', '.join(SEVERITIES)})")
        if any(s not in (1, 2, 3) for s in self.severities):
            raise SuiteError(f"suite {self.name}: severities must be 1, 2 or 3, got {self.severities}")


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> SuiteConfig:
    """A suite by name (configs/suite/<name>.yaml) or from a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise SuiteError(
            f"unknown suite '{name_or_path}' (valid: {', '.join(suite_names())}, or a .yaml file)"
        )
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"suite file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    names = {f.name for f in dataclasses.fields(SuiteConfig)}
    bad = sorted(set(raw) - names) if isinstance(raw, dict) else ["(not a mapping)"]
    if bad:
        raise SuiteError(
            f"suite file {path}: unknown key(s) {', '.join(bad)} (valid: {', '.join(sorted(names))})"
        )
    raw.setdefault("name", path.stem)
    try:  # typed: a string where a list of severities belongs is an error here, not a crash later
        merged = OmegaConf.merge(OmegaConf.structured(SuiteConfig), raw)
    except OmegaConfBaseException as exc:
        raise SuiteError(f"suite file {path}: {str(exc).splitlines()[0]}") from None
    cfg = SuiteConfig(**OmegaConf.to_container(merged, resolve=True))  # type: ignore[arg-type]
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------------- jobs
def cell_options(base: RouteOptions, cell: Cell, suite: SuiteConfig) -> RouteOptions:
    return dataclasses.replace(
        base,
        weather=cell.weather,
        occlusion=None if cell.scenario == NONE else cell.scenario,
        sensor_fault=None if cell.fault == NONE else f"{cell.fault}:{cell.severity}",
        scenarios_mode=suite.scenarios_mode,
        seed=suite.seed,
        max_ticks=suite.max_ticks,
    )


def cell_route(route: RouteConfig, cell: Cell) -> RouteConfig:
    """The route under this cell's id; its per-route seed stays the base route's."""
    return dataclasses.replace(route, id=f"{route.id}[{cell.key}]", seed_key=route.seed_key or route.id)


def jobs(
    suite: SuiteConfig, routes: list[RouteConfig], base: RouteOptions
) -> list[tuple[Cell, RouteConfig, RouteOptions]]:
    return [
        (cell, cell_route(r, cell), cell_options(base, cell, suite)) for cell in suite.cells() for r in routes
    ]


def run_order(suite: SuiteConfig, cells: list[Cell]) -> list[Cell]:
    """The order cells run in: coarse to fine, so a suite stopped early has the most telling cells (baseline,
    each scenario on ClearNoon, each fault at its strongest, each weather alone, then the rest)."""
    top = max(suite.severities) if suite.severities else 0

    def rank(c: Cell) -> int:
        if c.is_baseline:
            return 0
        if c.fault == NONE and c.weather == BASE_WEATHER:
            return 1
        if c.fault != NONE and c.severity == top:
            return 2
        if c.fault == NONE and c.scenario == NONE:
            return 3
        return 4 if c.fault != NONE else 5

    return sorted(cells, key=rank)


def run_suite(suite: SuiteConfig, cfg: EvalConfig) -> int:
    """Run (or resume) the suite; write results, table and heatmaps beside cfg.checkpoint. Exit code as
    run_evaluation: 0 ok, 1 stopped on a crash, 2 bad input."""
    try:
        cfg = dataclasses.replace(
            cfg,
            routes=suite.routes,
            routes_subset=suite.routes_subset,
            repetitions=1,
            vehicles=suite.vehicles,
            walkers=suite.walkers,
        )
        routes = build_route_list(cfg)
        _check_towns(routes, cfg)
        agent_class = load_agent_class(cfg.options.agent)
        _preflight(agent_class, cfg.options)
        # the rules as the evaluator picks them (the built-in routes are the project's benchmark: 2.x)
        version = cfg.options.leaderboard or (None if suite.routes else "2.0")
        rules = rules_of_run(version, [r.format for r in routes])
    except (RouteFileError, AgentLoadError, EvaluationError, SuiteError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = dataclasses.replace(cfg.options, leaderboard=rules.version)
    todo_all = jobs(suite, routes, base)
    results = ResultsFile(
        cfg.checkpoint, [r.route_id for _, r, _ in todo_all], resume=cfg.resume, rules=rules
    )
    if results.resume_note:
        print(results.resume_note, file=sys.stderr)
    order = {c: k for k, c in enumerate(run_order(suite, suite.cells()))}
    todo = sorted((j for j in todo_all if not results.done(j[1].route_id)), key=lambda j: order[j[0]])
    n_cells = len(suite.cells())
    print(
        f"suite {suite.name}: {n_cells} cells x {len(routes)} routes = {len(todo_all)} runs"
        + (f", {len(todo_all) - len(todo)} already finished" if len(todo) < len(todo_all) else ""),
        file=sys.stderr,
    )
    results.write()
    run_cfg = dataclasses.replace(cfg, report=False)

    def finish(cell: Cell, outcome: RouteOutcome) -> bool:
        outcome.record["cell"] = cell.as_dict()
        outcome.record["agent"] = cfg.options.agent
        results.add(outcome.record, outcome.key or None)
        results.save_sensors(outcome.sensors)
        results.write()
        if outcome.message:
            print(f"{outcome.record['status']}: {outcome.message}", file=sys.stderr)
        return outcome.stop_run

    stopped = (
        _run_ray(run_cfg, todo, finish)
        if cfg.workers > 1 and len(todo) > 1
        else _run_local(run_cfg, agent_class, todo, finish)
    )
    data = results.write(final=True)
    summary = summarise(data["_checkpoint"]["records"], suite.cells(), [r.id for r in routes])
    out = write_suite_report(cfg.checkpoint, suite, summary, cfg.options.agent, cfg.command)
    print(f"results: {cfg.checkpoint}   table: {out}", file=sys.stderr)
    print(f"mean resilience ({cfg.options.agent}): {summary['mean_resilience']:.3f}")
    return 1 if stopped else 0


def _progress(cfg: EvalConfig, n: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n, desc="suite runs", unit="run", file=sys.stderr)


def _run_local(cfg: EvalConfig, agent_class: type, todo: list, finish) -> bool:
    if not todo:
        return False
    try:
        sim = _make_sim(cfg)
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return True
    bar = _progress(cfg, len(todo))
    try:
        for cell, route, opts in todo:
            if finish(cell, run_route(sim, agent_class, route, opts)):
                return True
            if bar:
                bar.update(1)
    finally:
        sim.close()
        if bar:
            bar.close()
    return False


def _run_ray(cfg: EvalConfig, todo: list, finish) -> bool:
    import ray

    n = min(cfg.workers, len(todo))
    if not ray.is_initialized():
        ray.init(
            num_cpus=n,
            include_dashboard=False,
            log_to_driver=bool(cfg.options.debug),
            ignore_reinit_error=True,
            configure_logging=False,
        )
    reclaim_sigterm()
    worker_cls = ray.remote(num_cpus=1)(RouteWorker)
    workers = [worker_cls.remote(cfg) for _ in range(n)]
    errors = [e for e in ray.get([w.startup_error.remote() for w in workers]) if e]
    reclaim_sigterm()  # again once the workers run: Ray may install its handler as it starts them
    if errors:
        print(f"error: {errors[0]}", file=sys.stderr)
        for w in workers:
            ray.kill(w)
        return True
    queue, idle, pending, stopped = list(todo), list(workers), {}, False
    bar = _progress(cfg, len(todo))
    try:
        while (queue and not stopped) or pending:
            while idle and queue and not stopped:
                w = idle.pop()
                cell, route, opts = queue.pop(0)
                pending[w.run.remote(route, opts)] = (w, cell)
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                w, cell = pending.pop(ref)
                idle.append(w)
                if finish(cell, ray.get(ref)):
                    stopped = True
                if bar:
                    bar.update(1)
    except BaseException:  # Ctrl-C, SIGTERM or a failure: stop the workers now; finished cells are on disk
        close_workers(workers, graceful=False)
        raise
    finally:
        if bar:
            bar.close()
    close_workers(workers)
    return stopped


# ---------------------------------------------------------------------------------------------- summary
def _collided(record: dict[str, Any]) -> bool:
    inf = record.get("infractions", {})
    return any(inf.get(k) for k in ("collisions_pedestrian", "collisions_vehicle", "collisions_layout"))


def summarise(records: list[dict[str, Any]], cells: list[Cell], route_ids: list[str]) -> dict[str, Any]:
    """Per cell: mean driving score over the suite's routes, resilience (relative to the baseline cell on the
    same routes), collision rate; plus the mean resilience over every non-baseline cell. Cells with missing runs
    (a run still going) are reported as incomplete and left out of the mean."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        cell = Cell(**r["cell"]) if "cell" in r else None
        if cell is not None:
            by_cell.setdefault(cell.key, []).append(r)
    rows = []
    base = by_cell.get(Cell().key, [])
    base_ds = (
        sum(r["scores"]["score_composed"] for r in base) / len(base) if len(base) == len(route_ids) else None
    )
    for cell in cells:
        recs = by_cell.get(cell.key, [])
        complete = len(recs) == len(route_ids)
        ds = sum(r["scores"]["score_composed"] for r in recs) / len(recs) if recs else None
        res = None
        if complete and base_ds is not None and ds is not None:
            res = ds / base_ds if base_ds > 0 else (1.0 if ds == 0 else None)
        rows.append(
            {
                **cell.as_dict(),
                "key": cell.key,
                "runs": len(recs),
                "complete": complete,
                "driving_score": ds,
                "resilience": res,
                "collision_rate": sum(_collided(r) for r in recs) / len(recs) if recs else None,
                "route_completion": sum(r["scores"]["score_route"] for r in recs) / len(recs)
                if recs
                else None,
            }
        )
    others = [
        r["resilience"]
        for r in rows
        if r["resilience"] is not None
        and not Cell(r["weather"], r["scenario"], r["fault"], r["severity"]).is_baseline
    ]
    occl = [r for r in rows if r["scenario"] != NONE and r["collision_rate"] is not None]
    return {
        "cells": rows,
        "baseline_driving_score": base_ds,
        "mean_resilience": sum(others) / len(others) if others else float("nan"),
        "occlusion_collision_rate": sum(r["collision_rate"] for r in occl) / len(occl) if occl else None,
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _cell_text(r: dict[str, Any] | None) -> str:
    """'resilience (driving score)', or '-' for a cell with no finished run."""
    if r is None or not r["runs"]:
        return "-"
    return f"{_fmt(r['resilience'])} ({_fmt(r['driving_score'], 1)})"


def markdown_table(suite: SuiteConfig, summary: dict[str, Any], agent: str) -> str:
    """The suite's tables: weather x scenario and fault x severity resilience, collision rate per scenario."""
    rows = {r["key"]: r for r in summary["cells"]}
    scen = [NONE, *suite.scenarios]
    out = [
        f"### Robustness suite `{suite.name}`: {agent}",
        "",
        f"Baseline (ClearNoon, no scenario, no fault): driving score "
        f"{_fmt(summary['baseline_driving_score'])}. Cells: resilience = driving score / baseline "
        f"(driving score in brackets). **Mean resilience: {_fmt(summary['mean_resilience'], 3)}**",
        "",
        "| weather \\ scenario | " + " | ".join(scen) + " |",
        "|---|" + "---|" * len(scen),
    ]
    for w in suite.weathers:
        cells = []
        for s in scen:
            r = rows.get(Cell(w, s).key)
            cells.append(_cell_text(r))
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    if suite.scenarios:
        out += [
            "",
            "Collision rate (share of runs with any collision) per occlusion scenario, over the weathers:",
            "",
            "| scenario | " + " | ".join(suite.weathers) + " | all |",
            "|---|" + "---|" * (len(suite.weathers) + 1),
        ]
        for s in suite.scenarios:
            vals = [rows.get(Cell(w, s).key, {}).get("collision_rate") for w in suite.weathers]
            known = [v for v in vals if v is not None]
            out.append(
                f"| {s} | "
                + " | ".join(_fmt(v) for v in vals)
                + f" | {_fmt(sum(known) / len(known) if known else None)} |"
            )
        out.append(
            f"\nOcclusion-scenario collision rate over all their cells: "
            f"{_fmt(summary['occlusion_collision_rate'])}"
        )
    if suite.faults:
        sev = list(suite.severities)
        out += [
            "",
            "Sensor faults on ClearNoon (resilience, driving score in brackets):",
            "",
            "| fault \\ severity | " + " | ".join(str(s) for s in sev) + " |",
            "|---|" + "---|" * len(sev),
        ]
        for f in suite.faults:
            cells = []
            for s in sev:
                r = rows.get(Cell(BASE_WEATHER, NONE, f, s).key)
                cells.append(_cell_text(r))
            out.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write_heatmaps(out_dir: Path, suite: SuiteConfig, summary: dict[str, Any], agent: str) -> list[Path]:
    """heatmap_weather_scenario.png and heatmap_fault_severity.png (resilience, 0..1.2, annotated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = {r["key"]: r for r in summary["cells"]}
    made = []

    def draw(grid: np.ndarray, ylabels: list[str], xlabels: list[str], title: str, name: str) -> None:
        fig, ax = plt.subplots(
            figsize=(max(5.5, 3.2 + 1.1 * len(xlabels)), max(3.2, 1.9 + 0.42 * len(ylabels)))
        )
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=0.0, vmax=1.2, aspect="auto")
        ax.set_xticks(
            range(len(xlabels)),
            [x.replace("occlusion/", "") for x in xlabels],
            rotation=35,
            ha="right",
            fontsize=8,
        )
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, label="resilience (DS / baseline DS)")
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    def val(cell: Cell) -> float:
        r = rows.get(cell.key)
        return float("nan") if r is None or r["resilience"] is None else float(r["resilience"])

    scen = [NONE, *suite.scenarios]
    grid = np.array([[val(Cell(w, s)) for s in scen] for w in suite.weathers])
    draw(grid, suite.weathers, scen, f"{agent}: weather x occlusion scenario", "heatmap_weather_scenario.png")
    if suite.faults:
        sev = list(suite.severities)
        grid = np.array([[val(Cell(BASE_WEATHER, NONE, f, s)) for s in sev] for f in suite.faults])
        draw(
            grid,
            suite.faults,
            [f"severity {s}" for s in sev],
            f"{agent}: sensor faults on ClearNoon",
            "heatmap_fault_severity.png",
        )
    return made


def write_suite_report(
    checkpoint: str, suite: SuiteConfig, summary: dict[str, Any], agent: str, command: str
) -> Path:
    """robustness.md + robustness_summary.json + heatmaps beside the results JSON."""
    out_dir = Path(checkpoint).resolve().parent
    table = markdown_table(suite, summary, agent)
    figs = write_heatmaps(out_dir, suite, summary, agent)
    md = out_dir / "robustness.md"
    body = table + "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in figs) + "\n"
    if command:
        body += f"\nCommand: `{command}`\n"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(body)
    tmp.replace(md)
    atomic_write_json(out_dir / "robustness_summary.json", {"suite": suite.name, "agent": agent, **summary})
    return md


def load_summary(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
