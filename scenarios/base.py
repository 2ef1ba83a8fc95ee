"""The Scenario contract: spawn actors around a trigger point, wait for the ego, then script them.

Life cycle (driven by the evaluator, leaderboard/route_runner.py, or any loop that owns a simulator):

    sc = make_scenario("Scenario3", route=dense_route)        # parameters only, no simulator yet
    sc.setup(sim, cmap, trigger, rng)                         # spawns its actors, idle
    while driving:
        sim.apply_control(sc.control_hook(control, frame))    # only Scenario1 changes the ego's control
        sim.tick(); sc.tick(sim.ground_truth())               # triggers near the trigger point, drives actors
    sc.cleanup()                                              # destroys its actors, gives lights back

The ego's path past the trigger is the dense route when one is given (`route=`), else the lane from the
trigger, taking the `turn` branch at the first junction. Every random choice is drawn from `rng` in setup(),
so a scenario is a pure function of (map, trigger, route, parameters, rng seed) and the ego's motion.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import carla
import numpy as np

from scenarios.behaviours import PathMotion
from scenarios.geometry import Polyline, lane_path, wrap180
from sim.protocol import Simulator, SimulatorError
from sim.types import GroundTruth

EGO_PATH_AHEAD = 220.0  # metres of ego path built past the trigger
RETIRE_DISTANCE = 25.0  # finished actors farther than this from the ego are removed
RETIRE_AFTER_S = 5.0  # ... and any finished actor after standing at its path's end this long
RETIRE_STUCK_S = 20.0  # an actor of a finished scenario standing this long on its way is removed
STILL_SPEED = 0.1  # m/s


class ScenarioError(ValueError):
    """A scenario that cannot be built or placed here (one line, names the scenario and the reason)."""


@dataclass
class Placement:
    """Where setup() put one actor and what it should stand on: 'driving' (a driving lane), 'roadside'
    (shoulder or sidewalk next to the road), 'sidewalk', or 'any'."""

    role: str
    actor_id: int
    type_id: str
    x: float
    y: float
    yaw: float
    on: str


@dataclass
class ScenarioParams:
    """Parameters every scenario accepts; subclasses extend it with their own dataclass."""

    trigger_distance: float = 12.0  # the ego within this of the trigger point starts the scenario (metres)
    turn: str | None = None  # the ego's movement at the next junction when no route is given
    timeout: float = 60.0  # seconds after the trigger when the scenario gives held traffic lights back


class Scenario:
    """Base class: subclasses set `Config`, implement `_build()` and optionally `_on_trigger()` / `_update()`."""

    Config: ClassVar[type] = ScenarioParams
    kind: ClassVar[str] = "scenario"
    description: ClassVar[str] = ""
    # Movements at the next junction this scenario needs; with no route and no `turn`, setup() draws one.
    turns: ClassVar[tuple[str, ...]] = ()
    # Where an added-along-the-route copy should trigger: 'straight' (room ahead) or 'junction' (one ahead).
    placement: ClassVar[str] = "straight"

    def __init__(self, route: Sequence[tuple[carla.Transform, Any]] | None = None, **params: Any) -> None:
        self.id = type(self).__name__
        try:
            self.config = self.Config(**params)
        except TypeError:
            valid = ", ".join(f.name for f in dataclasses.fields(self.Config))
            bad = sorted(set(params) - {f.name for f in dataclasses.fields(self.Config)})
            raise ScenarioError(f"scenario {type(self).__name__}: unknown parameter(s) {', '.join(bad)} "
                                f"(valid: {valid})") from None
        if self.config.turn not in (None, "left", "right", "straight"):
            raise ScenarioError(f"scenario {self.id}: turn must be left, right or straight, got {self.config.turn!r}")
        self.route = list(route) if route is not None else None
        self.state = "unset"  # unset -> idle -> running -> done
        self.placements: list[Placement] = []
        self.motions: dict[int, PathMotion] = {}
        self._done_since: dict[int, float] = {}  # actor id -> game time it reached its path's end
        self._still_since: dict[int, float] = {}  # actor id -> game time it stopped (scenario done)
        self.trigger_frame: int | None = None
        self.frame = 0
        self._sim: Simulator | None = None
        self._lights_held = False
        self._ego_s = 0.0

    # ------------------------------------------------------------------ contract
    def setup(self, sim: Simulator, cmap: carla.Map, trigger: carla.Transform, rng: np.random.Generator) -> None:
        """Spawn this scenario's actors around `trigger` (idle until the ego comes near)."""
        if self.state != "unset":
            raise ScenarioError(f"scenario {self.id}: setup() called twice")
        self._sim, self.cmap, self.trigger, self.rng = sim, cmap, trigger, rng
        loc = trigger.location
        self.trigger_xy = (float(loc.x), float(loc.y))
        self._turn = self.config.turn
        if self._turn is None and not self.route and self.turns:
            self._turn = str(self.turns[int(rng.integers(len(self.turns)))])
        self.ego_path, self.drive_path = self._build_ego_path(cmap, trigger)
        try:
            self._build()
        except Exception as exc:
            self.cleanup()
            if isinstance(exc, ScenarioError):
                raise
            raise ScenarioError(f"scenario {self.id} could not be placed at ({loc.x:.1f}, {loc.y:.1f}): "
                                f"{type(exc).__name__}: {exc}") from exc
        self.state = "idle"

    def tick(self, gt: GroundTruth) -> None:
        """Advance the script with the ground truth of the tick that just ran.

        After the scenario is done (its script finished) its actors keep their motion and are still removed at
        the end of their paths; after `timeout` seconds only the traffic lights are given back.
        """
        if self.state == "unset":
            return
        if self.state == "done":
            self._retire_finished(gt)
            return
        self.frame = gt.frame
        e = gt.ego.pose
        s, _ = self.ego_path.project(e.x, e.y, max(self._ego_s - 5.0, 0.0), max(self._ego_s, 0.0) + 30.0)
        if s < 0.01:  # behind the trigger: signed distance along the path's first heading
            x0, y0, yaw0 = self.ego_path.point_at(0.0)
            r = math.radians(yaw0)
            s = min(0.0, (e.x - x0) * math.cos(r) + (e.y - y0) * math.sin(r))
        self._ego_s = s
        if self.state == "idle":
            if math.hypot(e.x - self.trigger_xy[0], e.y - self.trigger_xy[1]) > self.config.trigger_distance:
                return
            self.state, self.trigger_frame = "running", gt.frame
            self._on_trigger(gt)
        self._update(gt)
        self._retire_finished(gt)
        if self.elapsed(gt) > self.config.timeout:
            self._release_lights()

    def cleanup(self) -> None:
        """Destroy every actor this scenario spawned and release any traffic lights it holds."""
        self._release_lights()
        if self._sim is not None:
            for p in self.placements:
                try:
                    self._sim.destroy_actor(p.actor_id)
                except (SimulatorError, KeyError):
                    pass  # already retired
        self.motions.clear()
        self.state = "done"

    def control_hook(self, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        """The ego's control as the scenario perturbs it (identity unless overridden, e.g. Scenario1)."""
        return control

    # ------------------------------------------------------------------ for subclasses
    def _build(self) -> None:
        raise NotImplementedError

    def _on_trigger(self, gt: GroundTruth) -> None:
        for m in self.motions.values():
            m.start()

    def _update(self, gt: GroundTruth) -> None:
        pass

    def finish(self) -> None:
        """Stop scripting (actors already moving keep moving; the lights go back to their programme)."""
        self._release_lights()
        self.state = "done"

    def elapsed(self, gt: GroundTruth) -> float:
        """Seconds since the trigger (0 before it)."""
        return 0.0 if self.trigger_frame is None else (gt.frame - self.trigger_frame) * 0.05

    @property
    def ego_s(self) -> float:
        """The ego's arc length along `ego_path` (0 at the trigger point) after the last tick."""
        return self._ego_s

    def spawn(self, role: str, type_id: str, x: float, y: float, yaw: float, on: str,
              motion: PathMotion | None = None, source: str = "scenario") -> int:
        """Spawn one actor (with an optional PathMotion) and record its placement."""
        tf = carla.Transform(carla.Location(x, y, 0.0), carla.Rotation(yaw=yaw))
        actor_id = self._sim.spawn_actor(type_id, tf, motion, source)
        self.placements.append(Placement(role, actor_id, type_id, float(x), float(y), float(yaw), on))
        if motion is not None:
            motion.actor_id = actor_id
            self.motions[actor_id] = motion
        return actor_id

    def _retire_finished(self, gt: GroundTruth) -> None:
        """Remove actors at the end of their path once they are away from the ego, or once they have stood there
        RETIRE_AFTER_S: a path can end in the ego's lane (a crossing car's, past the junction), and a car standing
        there for good blocks the ego as no real driver would."""
        e = gt.ego.pose
        for aid, m in list(self.motions.items()):
            if self.state == "done" and m.active and not m.done:
                # After its scenario, an actor driving on (a lead, a broken-down car leaving) is background that
                # CARLA would have removed at the scenario's end: one stuck for good (behind walkers waiting for
                # it at a crossing, behind another scenario's idle car) is removed, never left to block the ego.
                if m.v > STILL_SPEED:
                    self._still_since.pop(aid, None)
                elif gt.timestamp - self._still_since.setdefault(aid, gt.timestamp) >= RETIRE_STUCK_S:
                    self._retire(aid)
                continue
            if m.done and m.active:
                p = m.pose()
                since = self._done_since.setdefault(aid, gt.timestamp)
                if (math.hypot(p.x - e.x, p.y - e.y) > RETIRE_DISTANCE
                        or gt.timestamp - since >= RETIRE_AFTER_S):
                    self._retire(aid)

    def _retire(self, aid: int) -> None:
        self._sim.destroy_actor(aid)
        del self.motions[aid]
        self.placements = [q for q in self.placements if q.actor_id != aid]

    def hold_lights(self, states: dict[int, str]) -> None:
        """Freeze every light and force `states` (light id -> 'Red' | 'Green' | ...) through the protocol."""
        sim = self._sim
        if not states:
            return
        sim.freeze_traffic_lights(True)
        self._lights_held = True
        for tl_id, st in sorted(states.items()):
            sim.set_traffic_light_state(tl_id, st)

    def _release_lights(self) -> None:
        if self._lights_held and self._sim is not None:
            self._lights_held = False
            try:
                self._sim.freeze_traffic_lights(False)
            except SimulatorError:
                pass

    def _build_ego_path(self, cmap: carla.Map, trigger: carla.Transform) -> tuple[Polyline, Polyline]:
        """(the ego's path for EGO_PATH_AHEAD metres, the whole way on: the route's remainder and 60 m of lane
        past its end), both starting at the trigger; vehicles that drive ahead of the ego use the second."""
        loc = trigger.location
        if self.route:
            pts = np.array([[t.location.x, t.location.y] for t, _ in self.route])  # (N, 2)
            d = np.hypot(pts[:, 0] - loc.x, pts[:, 1] - loc.y)
            i = int(np.argmin(d))
            if d[i] < 5.0:
                last = self.route[-1][0].location
                end = cmap.get_waypoint(last, project_to_road=True, lane_type=carla.LaneType.Driving)
                tail = lane_path(end, 60.0).xy[1:] if end is not None else np.zeros((0, 2))
                full = Polyline.from_points(np.vstack([pts[i:], tail]))
                return full.sub(0.0, min(full.length, EGO_PATH_AHEAD)), full
        wp = cmap.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
        if wp is None:
            raise ScenarioError(f"scenario {self.id}: trigger ({loc.x:.1f}, {loc.y:.1f}) is on no driving lane")
        if abs(wrap180(wp.transform.rotation.yaw - trigger.rotation.yaw)) > 90.0:
            left = wp.get_left_lane()  # the trigger's heading is the other direction: use the lane that way
            if left is not None and left.lane_type == carla.LaneType.Driving:
                wp = left
        path = lane_path(wp, EGO_PATH_AHEAD, turn=self._turn)
        return path, path

    def ego_turn(self) -> str | None:
        """The ego's movement at the next junction: the config's `turn`, else from the route's RoadOptions."""
        if self._turn:
            return self._turn
        if self.route:
            names = {1: "left", 2: "right", 3: "straight"}
            pts = np.array([[t.location.x, t.location.y] for t, _ in self.route])
            x, y = self.trigger_xy
            i = int(np.argmin(np.hypot(pts[:, 0] - x, pts[:, 1] - y)))
            for _, opt in self.route[i:]:
                if int(opt) in names:
                    return names[int(opt)]
        return None
