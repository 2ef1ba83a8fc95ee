"""Scenarios, occlusion set-ups, sensor faults and weather sets, registered by id.

    from scenarios import make_scenario, registered_ids
    make_scenario("Scenario3")                        # leaderboard-1.0 trigger-JSON names, Scenario1..Scenario10
    make_scenario("FollowLeadingVehicle")             # the same as Scenario2, by its scenario_runner name
    make_scenario("DynamicObjectCrossing", blocker_model="static.prop.container")   # leaderboard-2.0 scenarios
    make_scenario("occlusion/parked_truck_pedestrian")
    make_scenario("fault/gaussian_noise", sigma=8.0)  # .apply(input_data, frame)
    make_scenario("weather/fog")                      # a WeatherSet

Route files live in scenarios/routes/ (scenarios/make_routes.py writes the built-in set).
"""

from __future__ import annotations

from scenarios.registry import (
    ScenarioRegistryError,
    is_registered,
    make_scenario,
    register_scenario,
    registered_ids,
    scenario_spec,
    unregister_scenario,
)


def _register_builtins() -> None:
    from scenarios.leaderboard1 import LEADERBOARD1
    from scenarios.leaderboard2 import LEADERBOARD2
    from scenarios.occlusion import BusAtJunction, ParkedRowPedestrian, ParkedTruckPedestrian
    from scenarios.sensor_faults import FAULTS
    from scenarios.weather_sets import WEATHER_SETS, make_weather_set

    for name, (cls, runner_name) in LEADERBOARD1.items():
        register_scenario(name, cls, description=cls.description)
        if runner_name not in LEADERBOARD2:  # 2.0 redefines DynamicObjectCrossing (a static prop hides the walker)
            register_scenario(runner_name, cls, description=f"alias of {name}")
    for name, cls in LEADERBOARD2.items():
        register_scenario(name, cls, description=cls.description)
    for name, cls in (("occlusion/parked_truck_pedestrian", ParkedTruckPedestrian),
                      ("occlusion/parked_row_pedestrian", ParkedRowPedestrian),
                      ("occlusion/bus_at_junction", BusAtJunction)):
        register_scenario(name, cls, description=cls.description)
    for name, (cls, kwargs) in FAULTS.items():
        register_scenario(name, cls, kind="fault", description=cls.description, **kwargs)
    for name, (_, description) in WEATHER_SETS.items():
        register_scenario(name, make_weather_set, kind="weather", description=description, name=name)


_register_builtins()

__all__ = ["ScenarioRegistryError", "is_registered", "make_scenario", "register_scenario", "registered_ids",
           "scenario_spec", "unregister_scenario"]
