"""Blend stream-rate metrics on planted logs; the whole measurement runs end to end in
tests/test_simulate.py on a trained model."""
from types import SimpleNamespace

import numpy as np
import pytest

from crossfade.pipeline.quality import blend_simulation as bs


def _log(users, tracks, streamed):
    return SimpleNamespace(users=np.array(users), tracks=np.array(tracks),
                           responses=SimpleNamespace(streamed=np.array(streamed, bool)))


def test_member_rates_pool_days_and_ignore_empty_slots():
    users = np.array([7, 3, 9])
    logs = [_log([3, 7], [[1, 2], [1, -1]], [[1, 0], [1, 1]]),  # an empty slot never counts
            _log([3, 7], [[4, 5], [6, 8]], [[1, 1], [0, 0]])]
    rates = bs.member_rates(logs, users)
    assert rates[:2].tolist() == pytest.approx([1 / 3, 3 / 4])
    assert np.isnan(rates[2])  # never served


def test_arm_metrics_compare_each_member_with_their_solo_rate():
    groups = [np.array([10, 11]), np.array([12, 13, 14])]
    position = {u: i for i, u in enumerate([10, 11, 12, 13, 14])}
    solo = np.array([0.5, 0.4, 0.6, 0.0, 0.3])
    blend = np.array([0.5, 0.2, 0.3, 0.1, 0.3])
    result = bs.arm_metrics(blend, solo, groups, position)
    assert result["stream rate"] == pytest.approx(1.4 / 5)
    assert result["ratio"] == pytest.approx(1.4 / 1.8)
    # Group 2 has a member who streamed nothing solo: only group 1 has a worst member.
    assert result["worst-member ratio"] == pytest.approx(0.5)
    assert result["member spread"] == pytest.approx((30 + 20) / 2)
    itself = bs.arm_metrics(solo, solo, groups, position)
    assert itself["ratio"] == pytest.approx(1.0)
    assert itself["worst-member ratio"] == pytest.approx(1.0)
