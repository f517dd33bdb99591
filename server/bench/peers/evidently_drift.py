"""Evidently's drift verdicts and timings on the windows server/bench/drift-peers.bench.ts hands it.

    peers-venv-evidently-.../bin/python server/bench/peers/evidently_drift.py <manifest.json>

The manifest names the features (name, numeric or categorical), a reference file and window files: float64,
column after column (rows values per feature), NaN for missing; Evidently drops NaN from a column before it
compares, so a reference may pad a shorter column with NaN. Prints JSON on stdout:
- mode "agreement": per window and feature, what DataDriftPreset picks by default (method, threshold, score and
  Evidently's own verdict, from its tests), and the score and verdict of every method in the manifest's
  `methods`, each asked for by name through ValueDrift(column, method);
- mode "timing": seconds per window of Report([DataDriftPreset()]).run (as users run it) and of the default
  stattest functions alone (no report), and the process's peak resident memory after each window size.
Benchmarks and fixtures only, never part of Loopline.
"""
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.core import ColumnType
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

manifest = json.load(open(sys.argv[1]))
features = manifest["features"]
names = [f["name"] for f in features]
definition = DataDefinition(
    numerical_columns=[f["name"] for f in features if f["type"] == "numeric"],
    categorical_columns=[f["name"] for f in features if f["type"] == "categorical"],
)


def frame(path, rows):
    values = np.fromfile(path, dtype="<f8").reshape(len(features), rows)
    return pd.DataFrame({name: values[j] for j, name in enumerate(names)})


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdicts(snapshot):
    """Per ValueDrift metric id: drifted or not, as Evidently's own test says (FAIL = drift detected)."""
    return {t["metric_config"]["metric_id"]: t["status"] == "FAIL" for t in snapshot.dict()["tests"] if t["id"] == "drift"}


def value_drifts(snapshot):
    """Per column: (method, threshold, score, drifted) of each ValueDrift metric, in report order."""
    drifted = verdicts(snapshot)
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"] != "evidently:metric_v2:ValueDrift":
            continue
        out.setdefault(config["column"], []).append({"method": config["method"], "threshold": config["threshold"], "score": metric["value"], "drifted": drifted[metric["id"]]})
    return out


reference_frame = frame(manifest["reference"]["path"], manifest["reference"]["rows"])
reference = Dataset.from_pandas(reference_frame, data_definition=definition)
result = {"evidently": __import__("evidently").__version__, "pandas": pd.__version__, "windows": []}

if manifest["mode"] == "agreement":
    for window in manifest["windows"]:
        current = Dataset.from_pandas(frame(window["path"], window["rows"]), data_definition=definition)
        defaults = value_drifts(Report([DataDriftPreset()], include_tests=True).run(current, reference))
        forced_metrics = [ValueDrift(column=f["name"], method=m) for f in features for m in manifest["methods"][f["type"]]]
        forced = value_drifts(Report(forced_metrics, include_tests=True).run(current, reference))
        result["windows"].append({
            "name": window["name"],
            "features": {
                f["name"]: {
                    "default": defaults[f["name"]][0],
                    "methods": {m: forced[f["name"]][k] for k, m in enumerate(manifest["methods"][f["type"]])},
                }
                for f in features
            },
        })
else:
    result["baselineRssMb"] = peak_rss_mb()
    for window in manifest["windows"]:
        current_frame = frame(window["path"], window["rows"])
        current = Dataset.from_pandas(current_frame, data_definition=definition)
        report_seconds, stattest_seconds = [], []
        for _ in range(window["repeats"]):
            start = time.perf_counter()
            Report([DataDriftPreset()]).run(current, reference)
            report_seconds.append(time.perf_counter() - start)
            # The statistics alone: the default test per column on the NaN-free columns, no report around them.
            start = time.perf_counter()
            for f in features:
                column_type = ColumnType.Numerical if f["type"] == "numeric" else ColumnType.Categorical
                ref, cur = reference_frame[f["name"]].dropna(), current_frame[f["name"]].dropna()
                get_stattest(ref, cur, column_type, None)(ref, cur, column_type, None)
            stattest_seconds.append(time.perf_counter() - start)
        result["windows"].append({"name": window["name"], "rows": window["rows"], "features": len(features), "reportSeconds": report_seconds, "stattestSeconds": stattest_seconds, "peakRssMb": peak_rss_mb()})

json.dump(result, sys.stdout)
