"""`agents.navigation.local_planner.RoadOption`: CARLA's navigation commands (same names and values).

It is the very enum the evaluator's plans carry, so `option == RoadOption.LEFT` holds for plan entries.
"""

from sim.route_planner import RoadOption

__all__ = ["RoadOption"]
