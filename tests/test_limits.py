"""The descriptor budget: peers stop short of the RPC reserve, RPC short of the margin."""

from __future__ import annotations

import resource
import subprocess
import sys

from sipd.limits import PEER, RPC, DescriptorBudget, count_open_descriptors


class Fds:
    def __init__(self, open_):
        self.open = open_
        self.counts = 0

    def __call__(self):
        self.counts += 1
        return self.open


def test_peers_leave_the_rpc_reserve_and_rpc_leaves_the_margin():
    fds = Fds(0)
    budget = DescriptorBudget(1024, margin=32, rpc_reserve=64, count=fds)
    fds.open = 1024 - 32 - 64
    assert budget.may_accept(PEER) and budget.may_accept(RPC)
    fds.open += 1
    assert not budget.may_accept(PEER) and budget.may_accept(RPC)
    fds.open = 1024 - 32
    assert budget.may_accept(RPC)
    fds.open += 1
    assert not budget.may_accept(RPC)
    assert budget.refused == 2
    assert budget.state()["reserved_for_rpc"] == 64


def test_default_reserve_grows_with_the_limit_and_small_limits_still_work():
    assert DescriptorBudget(65536).reserved_for_rpc == 4096
    assert DescriptorBudget(1024).reserved_for_rpc == 64
    small = DescriptorBudget(64, count=lambda: 10)
    assert small.reserved_for_rpc == 16 and small.margin == 16
    assert small.may_accept(PEER)


def test_a_count_far_from_the_threshold_is_reused_but_never_for_too_many_asks():
    now = [0.0]
    fds = Fds(100)
    budget = DescriptorBudget(100_000, count=fds, clock=lambda: now[0])
    for _ in range(1000):
        budget.may_accept(PEER)
    assert fds.counts == 1  # far below the threshold, few asks: one count
    distance = budget.threshold(PEER) - 100
    for _ in range(distance):
        budget.may_accept(PEER)
    assert fds.counts > 1  # enough asks to have closed the distance: counted again
    counted = fds.counts
    now[0] += 1
    budget.may_accept(PEER)
    assert fds.counts == counted + 1  # and a stale count is never trusted


def test_near_the_threshold_every_ask_counts():
    fds = Fds(0)
    budget = DescriptorBudget(1024, count=fds)
    fds.open = budget.threshold(PEER) - 10
    for _ in range(5):
        budget.may_accept(PEER)
    assert fds.counts == 5


def test_count_open_descriptors_sees_a_new_one():
    before = count_open_descriptors()
    with open(sys.executable, "rb"):
        assert count_open_descriptors() == before + 1


def test_raise_descriptor_limit_in_a_child():
    code = ("import resource; from sipd.limits import raise_descriptor_limit; "
            "print(raise_descriptor_limit()[1], resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    result = subprocess.run(["prlimit", f"--nofile={low}:{hard}", "--", sys.executable, "-c",
                             code], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.split() == [str(hard), str(hard)]
