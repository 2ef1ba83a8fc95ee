"""Route helpers at the CARLA leaderboard's module path (`leaderboard.utils.route_manipulation`).

Agents written for CARLA import `downsample_route` from here; the implementations live in sim/route_planner.py.
"""

from sim.route_planner import downsample_route, interpolate_trajectory, location_route_to_gps

__all__ = ["downsample_route", "interpolate_trajectory", "location_route_to_gps"]
