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


class UnknownBlueprintError(ValueError):
    pass


def classify(type_id: str) -> tuple[str, str, tuple[float, float, float]]:
    """(category, vclass, half-extents) for a blueprint id; UnknownBlueprintError for non-actor ids."""
    for pattern, category, vclass in BLUEPRINTS:
        if fnmatch.fnmatch(type_id, pattern):
            return category, vclass, DEFAULT_EXTENTS[vclass]
    raise UnknownBlueprintError(
        f"unknown blueprint '{type_id}': expected 'vehicle.*', 'walker.*' or 'static.prop.*'")
