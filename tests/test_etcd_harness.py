"""The etcd harness in --quick mode on a real etcd (Debian's etcd-server, ``make etcd``), and its fit."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from calibration import harness
from calibration.dataset import Dataset
from calibration.fitetcd import fit_etcd
from calibration.measure import measure
from calibration.measure_etcd import MEMBERS, RANGE_KEYS_QUICK, RANGE_VALUE_BYTES, WATCH_PUTS, WATCHERS_QUICK

pytestmark = pytest.mark.harness


@pytest.fixture(scope="module")
def etcd_data(tmp_path_factory):
    try:
        harness.etcd_binary()
    except harness.ToolchainError as error:
        pytest.skip(str(error))
    return measure(tmp_path_factory.mktemp("etcddata"), host="quick", quick=True, only=["etcd"])


def test_the_etcd_binary_is_debians_3_4():
    try:
        version = harness.etcd_version()
    except harness.ToolchainError as error:
        pytest.skip(str(error))
    assert version.startswith("etcd Version: 3.4.")


def test_quick_etcd_measures_every_case_on_one_and_three_members(etcd_data):
    puts = pd.read_csv(etcd_data / "etcd_put.csv")
    assert set(puts["members"]) == set(MEMBERS)
    assert (puts["n"] > 0).all() and (puts["p50_s"] > 0).all() and (puts["p50_s"] <= puts["p99_s"]).all()
    ranges = pd.read_csv(etcd_data / "etcd_range.csv")
    assert len(ranges) == len(MEMBERS) * len(RANGE_KEYS_QUICK) * len(RANGE_VALUE_BYTES) * 2
    watches = pd.read_csv(etcd_data / "etcd_watch.csv")
    # every watcher received every put's event (etcdload fails otherwise)
    assert (watches["n"] == watches["watchers"] * WATCH_PUTS).all()
    assert set(watches["watchers"]) == set(WATCHERS_QUICK)
    meta = json.loads((etcd_data / "meta.json").read_text())
    started = [c for c in meta["harnesses"]["etcd"]["commands"] if c["argv"][0] == "etcd"]
    assert sorted(c["members"] for c in started) == sorted(MEMBERS)
    assert all("--unsafe-no-fsync" not in c["argv"] for c in started)


def test_the_fit_gives_every_parameter_set_from_quick_data(etcd_data):
    params = {p["name"]: p for p in fit_etcd(Dataset(etcd_data))}
    assert set(params) == {"etcd.request_s", "etcd.range.object_s", "etcd.range.byte_s", "etcd.apply_s",
                           "etcd.wal.byte_s", "etcd.wal.fsync_s", "etcd.raft.rtt_s", "etcd.watch.event_s"}
    assert all(p["fit"]["n"] == 1 for p in params.values())
