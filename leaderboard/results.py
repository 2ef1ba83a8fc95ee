"""The results JSON in the CARLA leaderboard's checkpoint format, written atomically after every route.

Layout (leaderboard 2.0): {"_checkpoint": {"global_record", "progress": [done, total], "records": [...]},
"entry_status", "eligible", "sensors", "values", "labels"}. Records carry route_id "RouteScenario_<id>_rep<k>".
Resuming keeps every finished record of the same run and skips those routes; a route that ended with
'Simulation crashed' is run again (as the leaderboard repeats the last route of a crashed run).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from leaderboard.scores import ELIGIBLE, GLOBAL_LABELS, compute_global_record, global_values

SENSOR_ICONS = {
    "sensor.camera.rgb": "carla_camera",
    "sensor.lidar.ray_cast": "carla_lidar",
    "sensor.other.radar": "carla_radar",
    "sensor.other.gnss": "carla_gnss",
    "sensor.other.imu": "carla_imu",
    "sensor.opendrive_map": "carla_opendrive_map",
    "sensor.speedometer": "carla_speedometer",
}


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write JSON so a reader (or a crash) only ever sees the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its files are private (0600); this one gets the umask's permissions, as a plain open() would
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x") as f:
            json.dump(data, f, indent=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_results(path: str | Path) -> dict[str, Any] | None:
    """The parsed results file, or None when it is absent, empty or not JSON."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return None
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class ResultsFile:
    """Route records of one run, keyed by route_id, in run order; `write()` saves the whole file atomically."""

    def __init__(self, path: str | Path, route_ids: list[str], resume: bool = False) -> None:
        self.path = Path(path)
        self.route_ids = list(route_ids)
        self.records: dict[str, dict[str, Any]] = {}
        self.sensors: list[str] = []
        self.entry_status = "Started"
        self.crashed = False  # the simulator failed outside any route (it could not be started): entry Crashed
        self.resume_note = ""
        if resume:
            self._resume()

    def _resume(self) -> None:
        data = load_results(self.path)
        if data is None:
            self.resume_note = f"nothing to resume in '{self.path}': starting from the first route"
            return
        if data.get("entry_status") == "Invalid":
            self.resume_note = f"'{self.path}' has entry_status Invalid: starting from the first route"
            return
        ckpt = data.get("_checkpoint") or {}
        progress = ckpt.get("progress") or []
        if len(progress) == 2 and progress[1] != len(self.route_ids):
            self.resume_note = (
                f"'{self.path}' is from a run of {progress[1]} routes, this run has "
                f"{len(self.route_ids)}: starting from the first route"
            )
            return
        wanted = set(self.route_ids)
        for rec in ckpt.get("records") or []:
            rid = rec.get("route_id")
            status = str(rec.get("status", "Started"))
            if rid in wanted and status != "Started" and "Simulation crashed" not in status:
                self.records[rid] = rec
        self.sensors = list(data.get("sensors") or [])

    def done(self, route_id: str) -> bool:
        return route_id in self.records

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["route_id"]] = record

    def save_sensors(self, sensors: list[dict[str, Any]] | None) -> None:
        if sensors and not self.sensors:
            self.sensors = [SENSOR_ICONS.get(s.get("type", ""), s.get("type", "")) for s in sensors]

    def ordered_records(self) -> list[dict[str, Any]]:
        return [self.records[r] for r in self.route_ids if r in self.records]

    def to_json(self, final: bool = False) -> dict[str, Any]:
        records = self.ordered_records()
        glob = compute_global_record(records, len(self.route_ids)) if records else {}
        entry = self.entry_status
        if final:
            entry = "Crashed" if self.crashed else "Finished"
            for r in records:
                if "Simulation crashed" in r["status"]:
                    entry = "Crashed"
                elif "Agent's sensors were invalid" in r["status"]:
                    entry = "Rejected"
        return {
            "_checkpoint": {
                "global_record": glob,
                "progress": [len(records), len(self.route_ids)],
                "records": records,
            },
            "entry_status": entry,
            "eligible": ELIGIBLE.get(entry, False),
            "sensors": self.sensors,
            "values": global_values(glob) if glob else [],
            "labels": list(GLOBAL_LABELS) if glob else [],
        }

    def write(self, final: bool = False) -> dict[str, Any]:
        data = self.to_json(final)
        if final:
            self.entry_status = data["entry_status"]
        atomic_write_json(self.path, data)
        return data
