"""Tunables of the privileged expert (agent/expert.py), in one dataclass.

Units: metres, seconds, m/s, m/s^2, km/h where the name says so. `ExpertConfig.from_file` reads a YAML or JSON
file (the leaderboard's --agent-config) with any subset of these fields; unknown keys are an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.controllers import LateralConfig, LongitudinalConfig


@dataclass
class ExpertConfig:
    # ---- cruise speed
    default_speed_limit_kmh: float = 30.0  # before the route passes any '274' speed-limit sign
    max_speed_kmh: float = 90.0  # cap on the map's limits (highways)
    town_max_speed_kmh: float = 36.0  # cap beside a sidewalk (Town01 has 90 km/h signs on town streets)
    # False: where the map gives its lanes' own limits (OpenDRIVE lane <speed> records, as the generated towns
    # write them) town streets drive those, and the cap only holds for limits read from signs or the default
    town_cap_lane_limits: bool = True
    curve_lateral_accel: float = 2.5  # m/s^2 allowed in curves: v <= sqrt(a / curvature)
    curve_window_m: float = 3.0  # half-window for the route curvature estimate
    min_curve_speed: float = 3.0  # m/s floor of the curve speed
    junction_turn_speed: float = 5.0  # m/s cap on LEFT / RIGHT turns inside junctions
    lane_change_speed: float = 6.0  # m/s cap while the route changes lane
    lane_change_length_m: float = 15.0  # a lane-change hop of the route is spread over this much new lane ...
    lane_change_time_s: float = 1.5  # ... or this long at the speed limit, where longer (highways)
    fast_lane_change_fraction: float = 0.8  # off town streets a lane change is capped at this share of the limit
    # gap acceptance before a lane change (agent/expert_lane_change.py): a vehicle on the target lane must be this
    # far (+ both half lengths) ahead of or behind the merging ego; one behind also this headway at its speed
    lane_change_margin_m: float = 3.0
    lane_change_rear_headway_s: float = 1.0
    lane_change_look_back_m: float = 80.0  # target-lane vehicles this far behind the change are considered
    # front past this share of the change (the body ~0.8 m over at 0.3): committed, no more gap checks
    lane_change_commit: float = 0.3
    lane_change_min_speed: float = 3.0  # m/s assumed for the ego's arrival at the merge when slower
    # Having waited this long before a change (standing at its start), the gap may be one a vehicle behind on the
    # target lane closes by braking (at most `lane_change_rear_decel` after `lane_change_rear_reaction_s`, once the
    # ego's body begins to cross), as SUMO's and the TM's traffic brakes for a vehicle entering its lane, with
    # `lane_change_patient_margin_m` between the bumpers instead of `lane_change_margin_m`. A gap nobody has to
    # brake for may never come in a queue leaving a light (OccGen-18 route 36: blocked there for 180 s).
    lane_change_patience_s: float = 8.0
    lane_change_rear_decel: float = 3.0
    lane_change_rear_reaction_s: float = 0.5
    lane_change_patient_margin_m: float = 1.0
    # the share of a change after which the ego's body reaches a vehicle on the target lane (the route's
    # smoothstep has moved the ego ~1 m over at 0.35: its side 0.5 m from a car's on a 3.5 m lane)
    lane_change_cross_fraction: float = 0.35
    lane_change_wait_speed: float = 1.0  # m/s: slower than this with the front within ...
    lane_change_wait_zone_m: float = 8.0  # ... this of a change's start counts as waiting for it
    comfort_decel: float = 2.0  # m/s^2 used to slow ahead of a lower cap (curve, limit, turn)
    preview_m: float = 45.0  # how far ahead speed caps are looked at

    # ---- stop lines (traffic lights and stop signs)
    stop_line_margin: float = 1.0  # m between the ego front and the stop line when standing
    stop_line_extend: float = (
        1.0  # m each side: stop lines are lengthened so a route off-centre still hits them
    )
    stop_line_heading_tol_deg: float = 60.0  # route heading vs the approach's lane_yaw
    # CARLA's red-light test draws a segment from 0.8 x half-length behind the centre to 1 m behind the rear:
    # the ego is through a light when that is past the stop line
    red_light_tail_m: float = 1.0
    clear_line_margin_m: float = 0.3  # waiting past a stop line inside a junction, keep the tail this far clear
    red_hold_speed: float = 1.0  # m/s: slower than this with the front over the line when red -> wait there
    yellow_max_decel: float = 4.0  # stop on yellow when this deceleration (or less) suffices ...
    # ... unless, seen turning yellow, the tail clears the line at the current speed this long before the red
    yellow_time_s: float = 3.0  # CARLA's yellow phase
    yellow_clear_margin_s: float = 0.5
    stop_sign_stop_speed: float = 0.1  # m/s: speed counted as "stopped" at a stop sign (as CARLA's criterion)
    stop_sign_wait_s: float = 1.0  # stand this long at a stop sign before going
    stop_sign_zone_m: float = 4.0  # the stop counts when the front is within this of the line

    # ---- junctions: never stop inside one behind a slow vehicle
    junction_entry_margin: float = 0.5  # m before the junction's first route point
    junction_exit_room_m: float = 2.0  # m of spare room past the junction a lead must leave for the ego
    junction_clear_speed: float = 3.0  # m/s: a lead slower than this may not clear the junction in time
    # ---- crosswalks: never stand on one while pedestrians wait to cross or a queue is slow
    crosswalk_margin_m: float = 1.0  # m between the ego front and the crosswalk when waiting before it
    crosswalk_walker_radius_m: float = 2.0  # pedestrians this close to a crosswalk are crossing (or about to)

    # ---- IDM (car following and every virtual obstacle)
    idm_max_accel: float = 1.5  # m/s^2 (a)
    idm_comfort_decel: float = 3.0  # m/s^2 (b)
    idm_time_headway: float = 1.2  # s (T) behind vehicles
    idm_min_gap_vehicle: float = 4.0  # m (s0) standstill gap behind vehicles
    idm_min_gap_walker: float = 3.0  # m (s0) in front of pedestrians / cyclists
    idm_min_gap_crossing: float = 3.0  # m (s0) before the conflict point with crossing traffic
    idm_delta: float = 4.0
    idm_tau: float = 0.6  # s: target speed = v + a_idm * tau
    idm_anticipation_s: float = 1.0  # s: a lead faster than the ego counts with the gap it opens in this time
    idm_reason_threshold: float = 0.05  # (s*/gap)^2 above which an obstacle is reported as the reason

    # ---- path corridor and actor prediction
    lookahead_m: float = 50.0  # corridor length ahead of the ego (also capped by the route end)
    corridor_margin_vehicle: float = 0.45  # m added to the ego half width for vehicles
    corridor_margin_walker: float = 0.9  # m added for moving pedestrians and cyclists
    corridor_margin_standing_walker: float = 0.5  # m for standing ones (people waiting at the kerb)
    corridor_margin_parallel_walker: float = 0.3  # m for ones walking along the path (not towards it)
    walker_parallel_lateral_speed: float = 0.3  # m/s towards the path at most, to count as walking along it
    corridor_margin_leaving_walker: float = 0.3  # m for ones walking out of the path faster than that
    # ... where the path up to them bends less than this from the ego's heading. Past a bend the ego's body sweeps
    # wider than the path (pursuit and the rear wheels cut the inside corner): walkers there get a wider margin.
    walker_parallel_max_bend_deg: float = 15.0
    corridor_margin_turn_parallel_walker: float = 0.6
    # Slower than this, the ego does not pull away from a walker about to walk into its side within the time
    # given: it would sweep its body into them (standing, it is not at fault, as the leaderboard's criterion)
    walker_beside_hold_speed: float = 1.0  # m/s
    walker_beside_hold_s: float = 2.0
    # In a turn the body points off the path, so the path corridor misses what the bumper is about to sweep: a
    # walker in the ego's box pushed ahead along its current heading by max(min, (speed + the walker's speed
    # towards the bumper) x time) (plus the margin each side) is braked for
    bumper_sweep_min_m: float = 1.0
    bumper_sweep_s: float = 0.5
    bumper_sweep_margin: float = 0.2
    # In a junction turn (heading change over the next turn_sweep_lookahead_m above turn_sweep_min_deg) the box is
    # rolled out along the path for max(min, speed x time) against the vehicles' predicted boxes
    turn_sweep_min_speed: float = 0.5
    turn_sweep_lookahead_m: float = 8.0
    turn_sweep_min_deg: float = 10.0
    turn_sweep_min_m: float = 2.0
    turn_sweep_s: float = 1.2
    turn_sweep_clearance: float = 0.15
    turn_sweep_standoff_m: float = 0.5
    detect_radius_m: float = 60.0  # actors farther than this are ignored
    predict_horizon_vehicle_s: float = 3.5  # constant-velocity prediction horizon for vehicles
    predict_horizon_walker_s: float = 4.5  # ... for pedestrians and cyclists
    predict_horizon_junction_s: float = 6.0  # ... for crossing traffic before the ego enters a junction
    predict_step_s: float = 0.25
    min_predict_speed_vehicle: float = 0.5  # m/s: slower vehicles are not extrapolated
    min_predict_speed_walker: float = 0.2
    # Vehicles on a lane outside a junction, heading along it within this and moving sideways slower than this
    # (no lane change), are predicted along the lane to the next junction, then straight on (constant-velocity
    # lines cut the inside of bends: oncoming cars on a curved road were braked for)
    lane_prediction: bool = True
    lane_predict_heading_tol_deg: float = 20.0
    lane_predict_lateral_speed: float = 0.5  # m/s
    same_direction_deg: float = 35.0  # a vehicle within this of the route heading is followed, not crossed
    crossing_time_buffer_s: float = 1.0  # ego must clear a conflict point this long before the other arrives
    clearing_accel: float = 1.5  # m/s^2 the ego is assumed to accelerate at while clearing a conflict point
    # other vehicles approaching a red / yellow light are predicted to stop at its line when this suffices
    other_red_stop_decel: float = 4.5  # m/s^2
    other_yellow_stop_decel: float = 3.0  # m/s^2
    # CARLA's Traffic Manager stands every vehicle at a junction without lights for 2 s (MINIMUM_STOP_TIME) before
    # it enters: background vehicles approaching one are predicted to stop at its entry and stand this long
    unsignalised_stop_s: float = 2.0
    unsignalised_stood_zone_m: float = 3.0  # one seen standing this close to the entry has made its stop

    # ---- unstick
    stuck_speed: float = 0.1  # m/s
    unstick_after_s: float = 20.0  # standing still this long with nothing legal to wait for -> creep
    unstick_standing_walker_after_s: float = 6.0  # ... or this long held by a pedestrian standing beside the path
    creep_speed: float = 1.5  # m/s
    creep_duration_s: float = 4.0
    creep_min_gap_m: float = 1.5  # even creeping, stop when something is this close in the corridor
    creep_corridor_margin: float = 0.15  # m added to the ego half width while creeping
    # nudge: when stuck behind a stalled actor that only partly blocks the lane, pass it with a sideways offset
    max_nudge_m: float = 1.6  # largest sideways offset from the route (past it, the other lane must be free)
    max_junction_nudge_m: float = 1.0  # ... past a pedestrian at a junction kerb (and only to the left)
    nudge_clearance: float = 0.3  # m kept between the ego and the passed actor (and the corridor margin then)
    nudge_speed: float = 2.5  # m/s while nudging
    nudge_max_actor_speed: float = 0.5  # m/s: only (nearly) standing actors are passed
    nudge_max_gap_m: float = 8.0  # only actors this close ahead
    nudge_return_m: float = 3.0  # m past the actor before returning to the route

    # ---- route end
    route_end_overrun_m: float = 4.0  # stop this far past the last route point

    # ---- sensors: the expert reads ground truth and ignores cameras. Off by default: six cameras rendered every
    # tick cost time for nothing (--record and the data collector render their own), and leaderboard 1.0's rules
    # allow four, so a 1.0 route file refused the expert. On, the agent declares the nuScenes rig (a camera run).
    cameras: bool = False  # declare the six nuScenes rig cameras
    camera_width: int = 400
    camera_height: int = 225

    # ---- controllers
    lateral: LateralConfig = field(default_factory=LateralConfig)
    longitudinal: LongitudinalConfig = field(default_factory=LongitudinalConfig)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and (not math.isfinite(v) or v < 0):
                raise ValueError(f"ExpertConfig.{f.name} must be a finite number >= 0, got {v}")
        if self.max_speed_kmh <= 0:
            raise ValueError(f"ExpertConfig.max_speed_kmh must be > 0, got {self.max_speed_kmh}")
        if self.town_max_speed_kmh <= 0:
            raise ValueError(f"ExpertConfig.town_max_speed_kmh must be > 0, got {self.town_max_speed_kmh}")
        if self.camera_width < 1 or self.camera_height < 1:
            raise ValueError(
                f"ExpertConfig camera size must be positive, got {self.camera_width}x{self.camera_height}"
            )
        if self.predict_step_s <= 0:
            raise ValueError(f"ExpertConfig.predict_step_s must be > 0, got {self.predict_step_s}")

    @property
    def max_speed(self) -> float:
        return self.max_speed_kmh / 3.6

    @property
    def town_max_speed(self) -> float:
        return self.town_max_speed_kmh / 3.6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpertConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown expert config key(s): {', '.join(unknown)}")
        data = dict(data)
        if isinstance(data.get("lateral"), dict):
            data["lateral"] = LateralConfig(**data["lateral"])
        if isinstance(data.get("longitudinal"), dict):
            data["longitudinal"] = LongitudinalConfig(**data["longitudinal"])
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path | None) -> ExpertConfig:
        """Defaults for None / '' ; otherwise a .yaml/.yml/.json file of overrides."""
        if path is None or str(path) == "":
            return cls()
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"expert config file not found: {p}")
        text = p.read_text()
        if p.suffix in (".yaml", ".yml"):
            from omegaconf import OmegaConf

            data = OmegaConf.to_container(OmegaConf.create(text), resolve=True) or {}
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"expert config must be .yaml, .yml or .json, got {p.name}")
        if not isinstance(data, dict):
            raise TypeError(f"expert config {p} must be a mapping of field -> value")
        return cls.from_dict(data)
