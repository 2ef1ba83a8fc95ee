"""The results JSON in the CARLA leaderboard's checkpoint format, written atomically after every route.

Layout: {"_checkpoint": {"global_record", "progress": [done, total], "records": [...]}, "entry_status",
"eligible", "sensors", "values", "labels"}, filled as the rules' version does:
  - 2.x: records carry route_id "RouteScenario_<id>_rep<k>"; the global record, values and labels are written once,
    at the end of a run that did not stop on a crash or a rejection (otherwise {} and []); entry status 'Finished',
    'Crashed', 'Rejected', or 'Invalid' when the file fails 2.x's final validation (e.g. an agent declaring no
    sensors).
  - 1.0: route_id "RouteScenario_<id>", unrounded numbers, keys sorted; at the end 'Finished', 'Finished with agent
    errors' or 'Finished with missing data' and 1.0's global record (leaderboard/scores_v1.py).
Resuming keeps every finished record of the same run and skips those routes; a route that ended with
'Simulation crashed' is run again (as the leaderboard repeats the last route of a crashed run).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from leaderboard.rules import RULES, LeaderboardRules
from leaderboard.scores import ELIGIBLE, GLOBAL_LABELS, compute_global_record, global_values
from leaderboard.scores_v1 import (
    GLOBAL_LABELS_V1,
    compute_global_record_v1,
    final_entry_status_v1,
    global_values_v1,
)

SENSOR_ICONS = {
    "sensor.camera.rgb": "carla_camera",
    "sensor.lidar.ray_cast": "carla_lidar",
    "sensor.other.radar": "carla_radar",
    "sensor.other.gnss": "carla_gnss",
    "sensor.other.imu": "carla_imu",
    "sensor.opendrive_map": "carla_opendrive_map",
    "sensor.speedometer": "carla_speedometer",
}


def atomic_write_json(path: str | Path, data: Any, sort_keys: bool = False) -> None:
    """Write JSON so a reader (or a crash) only ever sees the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its files are private (0600); this one gets the umask's permissions, as a plain open() would
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x") as f:
            json.dump(data, f, indent=4, sort_keys=sort_keys)
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


STOPPING_STATUSES = ("Simulation crashed", "Agent's sensors were invalid")  # a route ending so stops the run


class ResultsFile:
    """Route records of one run, keyed by the run's unique route keys ('RouteScenario_<id>_rep<k>'), in run order;
    `write()` saves the whole file atomically in the layout of `rules.version`."""

    def __init__(
        self,
        path: str | Path,
        route_ids: list[str],
        resume: bool = False,
        rules: LeaderboardRules | None = None,
    ) -> None:
        self.path = Path(path)
        self.route_ids = list(route_ids)
        self.rules = rules or RULES["2.0"]
        self.records: dict[str, dict[str, Any]] = {}
        self.sensors: list[str] = []
        self.sensors_initialized = False  # an agent's sensors passed validation (2.x checks they were saved)
        self.entry_status = "Started"
        self.crashed = False  # the simulator failed outside any route (never started): entry Crashed
        self.resume_note = ""
        self.invalid_reason = ""  # why 2.x's final validation made the entry 'Invalid'
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
        for rec in ckpt.get("records") or []:
            key = self._key_of(rec)
            status = str(rec.get("status", "Started"))
            if key is not None and status != "Started" and "Simulation crashed" not in status:
                self.records[key] = rec
        self.sensors = list(data.get("sensors") or [])

    def _key_of(self, rec: dict[str, Any]) -> str | None:
        """The run's key of a record read back (1.0 ids repeat across repetitions: matched by index)."""
        rid = rec.get("route_id")
        if self.rules.route_id_rep_suffix:
            return rid if rid in set(self.route_ids) else None
        idx = rec.get("index")
        if isinstance(idx, int) and 0 <= idx < len(self.route_ids):
            key = self.route_ids[idx]
            if key.rsplit("_rep", 1)[0] == rid:
                return key
        return None

    def done(self, route_id: str) -> bool:
        return route_id in self.records

    def add(self, record: dict[str, Any], key: str | None = None) -> None:
        """Store a finished route's record under its run key (default: its route_id)."""
        self.records[key or record["route_id"]] = record

    def save_sensors(self, sensors: list[dict[str, Any]] | None) -> None:
        if sensors is not None:
            self.sensors_initialized = True
        if sensors and not self.sensors:
            self.sensors = [SENSOR_ICONS.get(s.get("type", ""), s.get("type", "")) for s in sensors]

    def ordered_records(self) -> list[dict[str, Any]]:
        return [self.records[r] for r in self.route_ids if r in self.records]

    def stopped_status(self, records: list[dict[str, Any]]) -> str:
        """'Crashed' / 'Rejected' when the run stopped on a route (or the simulator never started), else ''."""
        entry = "Crashed" if self.crashed else ""
        for r in records:
            if STOPPING_STATUSES[0] in r["status"]:
                entry = "Crashed"
            elif STOPPING_STATUSES[1] in r["status"]:
                entry = "Rejected"
        return entry

    def to_json(self, final: bool = False) -> dict[str, Any]:
        if self.rules.version == "1.0":
            return self._to_json_v1(final)
        records = self.ordered_records()
        progress = [len(records), len(self.route_ids)]
        stopped = self.stopped_status(records)
        entry = stopped or self.entry_status
        glob: dict[str, Any] = {}
        if final and not stopped:
            glob = compute_global_record(records, len(self.route_ids))
            entry = "Finished"
            self.invalid_reason = self._validate_v2(records, progress)
            if self.invalid_reason:
                entry = "Invalid"
        return {
            "_checkpoint": {"global_record": glob, "progress": progress, "records": records},
            "entry_status": entry,
            "eligible": ELIGIBLE.get(entry, False),
            "sensors": self.sensors,
            "values": global_values(glob) if glob else [],
            "labels": list(GLOBAL_LABELS) if glob else [],
        }

    def _validate_v2(self, records: list[dict[str, Any]], progress: list[int]) -> str:
        """2.x's validate_and_write_statistics on a finished run: '' when well formed, else the reason."""
        if self.sensors_initialized and not self.sensors:
            return "Missing 'sensors' data"
        if progress[0] != progress[1] or progress[0] != len(records):
            return "'progress' data doesn't match its expected value"
        if any(r["status"] == "Started" for r in records):
            return "Found a route record with missing data"
        return ""

    def _to_json_v1(self, final: bool) -> dict[str, Any]:
        records = self.ordered_records()
        progress = [len(records), len(self.route_ids)]
        stopped = self.stopped_status(records)
        glob: dict[str, Any] = {}
        entry, eligible = (stopped or self.entry_status), False
        if final and not stopped:
            glob = compute_global_record_v1(records, len(self.route_ids))
            entry, eligible = final_entry_status_v1(records, len(self.route_ids), progress)
        return {
            "_checkpoint": {"global_record": glob, "progress": progress, "records": records},
            "entry_status": entry,
            "eligible": eligible,
            "sensors": self.sensors,
            "values": global_values_v1(glob) if glob else [],
            "labels": list(GLOBAL_LABELS_V1) if glob else [],
        }

    def write(self, final: bool = False) -> dict[str, Any]:
        data = self.to_json(final)
        if final:
            self.entry_status = data["entry_status"]
        atomic_write_json(self.path, data, sort_keys=self.rules.version == "1.0")  # 1.0 writes keys sorted
        return data
