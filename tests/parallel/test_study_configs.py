"""A study finished before `sync_batch_norm` existed is still recognised as finished."""

from __future__ import annotations

import json

from xnet.config import RunConfig
from xnet.study import finished_metrics


def test_a_run_saved_without_sync_batch_norm_counts_as_finished(tmp_path):
    cfg = RunConfig(dataset="sine", loss="mse", hidden=[4], out=str(tmp_path))
    saved = cfg.to_dict()
    del saved["sync_batch_norm"]  # as written by xnet before data-parallel training
    (tmp_path / "metrics.json").write_text(json.dumps({"config": saved, "test_loss": 1.0}))
    assert finished_metrics(tmp_path, cfg) == {"config": saved, "test_loss": 1.0}
    saved["lr"] = 0.5  # a change that matters is still a change
    (tmp_path / "metrics.json").write_text(json.dumps({"config": saved, "test_loss": 1.0}))
    assert finished_metrics(tmp_path, cfg) is None
