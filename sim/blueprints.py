"""CARLA-style blueprint ids -> what the embedded simulator draws and labels.

Scenario files name actors by CARLA blueprint ids ('vehicle.tesla.model3', 'walker.pedestrian.0001',
'static.prop.trafficcone01'); the embedded backend maps each id to a category (what collision criteria report),
a vehicle class (mesh and Occ3D class) and default half-extents.
"""

from __future__ import annotations

import fnmatch

from sim.types import DEFAULT_EXTENTS

# (glob pattern, category, vclass); the first match wins.
BLUEPRINTS: list[tuple[str, str, str]] = [
    ("vehicle.carlamotors.carlacola", "vehicle", "truck"),
    ("vehicle.carlamotors.firetruck", "vehicle", "truck"),
    ("vehicle.tesla.cybertruck", "vehicle", "car"),
    ("vehicle.*truck*", "vehicle", "truck"),
    ("vehicle.mitsubishi.fusorosa", "vehicle", "bus"),
    ("vehicle.*bus*", "vehicle", "bus"),
    ("vehicle.ford.ambulance", "vehicle", "van"),
    ("vehicle.mercedes.sprinter", "vehicle", "van"),
    ("vehicle.volkswagen.t2*", "vehicle", "van"),
    ("vehicle.*van*", "vehicle", "van"),
    ("vehicle.harley-davidson.*", "vehicle", "motorcycle"),
    ("vehicle.kawasaki.*", "vehicle", "motorcycle"),
    ("vehicle.yamaha.*", "vehicle", "motorcycle"),
    ("vehicle.vespa.*", "vehicle", "motorcycle"),
    ("vehicle.diamondback.*", "vehicle", "bicycle"),
    ("vehicle.bh.*", "vehicle", "bicycle"),
    ("vehicle.gazelle.*", "vehicle", "bicycle"),
    ("vehicle.*", "vehicle", "car"),
    ("walker.*", "walker", "pedestrian"),
    ("static.prop.trafficcone*", "static", "cone"),
    ("static.prop.constructioncone*", "static", "cone"),
    ("static.prop.*barrier*", "static", "barrier"),
    ("static.prop.*", "static", "prop"),
]


# Static props with their real sizes: half-extents (forward, right, up) in metres, as CARLA's meshes measure
# (forward = the prop's long side, which scenarios align with the road). Props not listed are 1 m cubes.
PROP_EXTENTS: dict[str, tuple[float, float, float]] = {
    "static.prop.busstop": (2.0, 0.75, 1.35),  # bus shelter, 4.0 x 1.5 x 2.7 m
    "static.prop.busstoplb": (2.0, 0.75, 1.35),  # leaderboard-2.0's bus stop
    "static.prop.advertisement": (1.0, 0.2, 1.4),  # free-standing advertisement board, 2.0 x 0.4 x 2.8 m
    "static.prop.container": (3.05, 1.22, 1.3),  # 20 ft shipping container, 6.1 x 2.44 x 2.6 m
    "static.prop.vendingmachine": (0.5, 0.45, 0.95),  # 1.0 x 0.9 x 1.9 m
    "static.prop.foodcart": (1.2, 0.8, 1.2),
    "static.prop.haybalelb": (0.6, 0.6, 0.6),
    "static.prop.streetbarrier": (1.0, 0.3, 0.5),
    "static.prop.vehicledoor": (0.55, 0.04, 0.6),  # an opened car door (the embedded backend's door actor)
}


class UnknownBlueprintError(ValueError):
    pass


def classify(type_id: str) -> tuple[str, str, tuple[float, float, float]]:
    """(category, vclass, half-extents) for a blueprint id; UnknownBlueprintError for non-actor ids."""
    if type_id in PROP_EXTENTS:
        return "static", "prop", PROP_EXTENTS[type_id]
    for pattern, category, vclass in BLUEPRINTS:
        if fnmatch.fnmatch(type_id, pattern):
            return category, vclass, DEFAULT_EXTENTS[vclass]
    raise UnknownBlueprintError(
        f"unknown blueprint '{type_id}': expected 'vehicle.*', 'walker.*' or 'static.prop.*'")
