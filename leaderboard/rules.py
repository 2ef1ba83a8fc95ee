"""The two rule sets of the CARLA leaderboard, as data: 1.0 (branch `leaderboard-1.0`) and 2.x (`master`).

`--leaderboard 1.0|2.0` picks one; by default a route file's own format does. The rules decide which criteria run,
how the route timeout is computed, how the agent is constructed and given its plan, which sensors it may declare,
how routes are named and scored, and the layout of the results file (leaderboard/scores.py for 2.x,
leaderboard/scores_v1.py for 1.0). docs/leaderboard.md tabulates every difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from leaderboard.autoagents.agent_wrapper import QUALIFIER_SENSORS_LIMITS, SENSORS_LIMITS
from leaderboard.scores import compute_route_record, failed_route_record
from leaderboard.scores_v1 import compute_route_record_v1, failed_route_record_v1, keypoint_route_length

LEADERBOARD_VERSIONS = ("1.0", "2.0")

# Sensor limits per type. 2.x: leaderboard master's SENSORS_LIMITS; 1.0: leaderboard-1.0's (2.x kept them for its
# qualifier tracks, so the agent wrapper holds both tables).
SENSORS_LIMITS_2X: Mapping[str, int] = MappingProxyType(SENSORS_LIMITS)
SENSORS_LIMITS_1_0: Mapping[str, int] = MappingProxyType(QUALIFIER_SENSORS_LIMITS)


@dataclass(frozen=True)
class LeaderboardRules:
    """Everything that differs between the leaderboard versions (the same evaluator runs both)."""

    version: str
    min_speed_test: bool  # MinimumSpeedRouteTest runs (2.x only)
    # route timeout: None -> 2.x (300 s + 1 / (10 % of the speed limit) s per metre advanced); else 1.0's
    # int(timeout_seconds_per_metre x dense route length + timeout_initial_seconds), fixed for the route
    timeout_seconds_per_metre: float | None
    timeout_initial_seconds: float
    outside_lanes_allowed_m: float  # OutsideRouteLanesTest.ALLOWED_OUT_DISTANCE beyond half the lane width
    outside_lanes_v1: bool  # 1.0's wrong-lane rule (a same-direction lane change clears it) and passing test
    plan_sample_distance: float  # metres between kept points of the plan given to set_global_plan
    agent_constructor: str  # 'path_to_conf_file': Agent(conf) runs setup(); 'host_port_debug': Agent(h, p, d)
    sensor_limits: Mapping[str, int] = field(default_factory=dict)
    route_id_rep_suffix: bool = True  # records say 'RouteScenario_3_rep0' (2.x) or 'RouteScenario_3' (1.0)

    def route_name(self, route_name: str, repetition_index: int) -> str:
        """The results-file route_id of a run of route `route_name` ('RouteScenario_<id>')."""
        return f"{route_name}_rep{repetition_index}" if self.route_id_rep_suffix else route_name

    def compute_route_record(
        self,
        route_id: str,
        index: int,
        events: list,
        route_completion: float,
        route_length: float,
        duration_game: float,
        duration_system: float,
        timed_out: bool = False,
        failure_message: str = "",
    ) -> dict[str, Any]:
        """One route's results record under these rules (scores.py for 2.x, scores_v1.py for 1.0)."""
        fn = compute_route_record_v1 if self.version == "1.0" else compute_route_record
        return fn(
            route_id,
            index,
            events,
            route_completion,
            route_length,
            duration_game,
            duration_system,
            timed_out=timed_out,
            failure_message=failure_message,
        )

    def failed_route_record(
        self, route_id: str, index: int, failure_message: str, route_length: float = 0.0
    ) -> dict[str, Any]:
        """The record of a route that could not be driven (score 0)."""
        fn = failed_route_record_v1 if self.version == "1.0" else failed_route_record
        return fn(route_id, index, failure_message, route_length)

    def record_route_length(
        self, keypoints: Sequence[tuple[float, float, float]], dense_length: float
    ) -> float:
        """The route length a record states: 1.0 sums the route file's keypoint distances, 2.x the dense route's."""
        return keypoint_route_length(keypoints) if self.version == "1.0" else dense_length

    def route_timeout(self, dense_route_length: float) -> float | None:
        """1.0's fixed route timeout in seconds for a route of this length; None under 2.x (speed-limit based)."""
        if self.timeout_seconds_per_metre is None:
            return None
        return float(int(self.timeout_seconds_per_metre * dense_route_length + self.timeout_initial_seconds))


RULES: Mapping[str, LeaderboardRules] = MappingProxyType(
    {
        "1.0": LeaderboardRules(
            version="1.0",
            min_speed_test=False,
            timeout_seconds_per_metre=0.8,
            timeout_initial_seconds=5.0,
            outside_lanes_allowed_m=1.3,
            outside_lanes_v1=True,
            plan_sample_distance=50.0,
            agent_constructor="path_to_conf_file",
            sensor_limits=SENSORS_LIMITS_1_0,
            route_id_rep_suffix=False,
        ),
        "2.0": LeaderboardRules(
            version="2.0",
            min_speed_test=True,
            timeout_seconds_per_metre=None,
            timeout_initial_seconds=300.0,
            outside_lanes_allowed_m=0.5,
            outside_lanes_v1=False,
            plan_sample_distance=200.0,
            agent_constructor="host_port_debug",
            sensor_limits=SENSORS_LIMITS_2X,
            route_id_rep_suffix=True,
        ),
    }
)


def get_rules(version: str | None, route_format: str = "2.0") -> LeaderboardRules:
    """The rules of `version` ('1.0' | '2.0' | '2.1'...), or of the route file's format when version is None."""
    v = route_format if version in (None, "") else str(version)
    if v.startswith("2"):
        v = "2.0"
    if v not in RULES:
        raise ValueError(
            f"unknown leaderboard version '{version}' (choose {' or '.join(LEADERBOARD_VERSIONS)})"
        )
    return RULES[v]


def rules_of_run(version: str | None, route_formats: list[str]) -> LeaderboardRules:
    """The rules of a whole run: the explicit version, else the route file's format (one format per file)."""
    formats = sorted(set(route_formats)) or ["2.0"]
    if version in (None, "") and len(formats) > 1:
        raise ValueError(f"the routes mix leaderboard formats {formats}: choose one with --leaderboard")
    return get_rules(version, formats[0])


def construct_agent(
    agent_class: type, rules: LeaderboardRules, agent_config: str, host: str, port: int, debug: int
) -> Any:
    """Build the agent as the rules' evaluator does (1.0: Agent(path_to_conf_file), whose __init__ runs setup)."""
    if rules.agent_constructor == "path_to_conf_file":
        return agent_class(agent_config)
    return agent_class(host, port, debug)
