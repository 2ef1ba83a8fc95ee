"""Occlusion scenarios for robustness evaluation: large vehicles hide what the ego must react to.

  occlusion/parked_truck_pedestrian  a box truck parked at the right roadside; a pedestrian steps out in front of
                                     its cab, invisible to the cameras until it is on the road
  occlusion/parked_row_pedestrian    three cars parked nose to tail on the right; a child-height pedestrian steps out
                                     ahead of the row
  occlusion/bus_at_junction          a bus stands at a stop on the right just before a junction; a car from the
                                     right, hidden behind it, runs its red light across the ego's path (ego green)

They reuse the leaderboard-1.0 machinery (scenarios/leaderboard1.py) with an occluder added; a privileged expert
sees through occluders, a camera agent does not, which is the point of the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from scenarios.base import ScenarioError
from scenarios.geometry import cross_section
from scenarios.leaderboard1 import (
    DynamicObjectCrossing,
    DynamicObjectCrossingParams,
    JunctionParams,
    OppositeVehicleRunningRedLight,
    half_length,
    half_width,
)

TRUCK = "vehicle.carlamotors.carlacola"
BUS = "vehicle.mitsubishi.fusorosa"


@dataclass
class ParkedTruckPedestrianParams(DynamicObjectCrossingParams):
    occluder: str = TRUCK
    distance: float = 22.0


class ParkedTruckPedestrian(DynamicObjectCrossing):
    """A pedestrian steps out in front of a parked box truck (the truck hides it from every front camera)."""

    Config = ParkedTruckPedestrianParams
    description = "pedestrian steps out in front of a truck parked on the right"


@dataclass
class ParkedRowPedestrianParams(DynamicObjectCrossingParams):
    occluder: str = "vehicle.mercedes.sprinter"
    occluders: int = 3
    occluder_gap: float = 1.0
    distance: float = 26.0
    walker_speed: float = 1.6


class ParkedRowPedestrian(DynamicObjectCrossing):
    """A pedestrian steps out ahead of a row of parked vans."""

    Config = ParkedRowPedestrianParams
    description = "pedestrian steps out ahead of a row of parked vans"


@dataclass
class BusAtJunctionParams(JunctionParams):
    side: str = "right"


class BusAtJunction(OppositeVehicleRunningRedLight):
    """A bus at a stop just before the junction hides a red-light runner coming from the right."""

    Config = BusAtJunctionParams
    description = "bus stopped before the junction hides a red-light runner from the right"
    sides = ("right",)

    def _extra_build(self) -> None:
        hl, hw = half_length(BUS), half_width(BUS)
        s_bus = self.s_entry - 2.0 - hl
        if s_bus - hl < 0.0:
            raise ScenarioError(f"scenario {self.id}: the junction is too close to the trigger for the bus")
        cs = cross_section(self.cmap, self.ego_path, s_bus)
        x, y, yaw = self.ego_path.offset_point(s_bus, cs.right_drive_edge + 0.1 + hw)
        self.spawn("bus", BUS, x, y, yaw, "roadside", source="parked")
