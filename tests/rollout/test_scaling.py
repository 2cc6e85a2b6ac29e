"""Replicas per slot during a rollout (pure): the replica ratio of the `service` router, the
weighted routers' HPA minimums, and how the API's requests map to RBAC rules."""

from __future__ import annotations

import pytest

from skserve.errors import InvalidInput
from skserve.rollout import scaling
from skserve.rollout.kube import rbac_call
from skserve.rollout.scaling import Rest, Scale

HPA = {"blue": Rest(2, 10, True), "green": Rest(2, 10, True)}


@pytest.mark.parametrize("weight,total,want", [(10, 10, (1, 9)), (25, 10, (2, 8)),
                                               (5, 10, (1, 9)), (50, 4, (2, 2)),
                                               (25, 4, (1, 3)), (99, 10, (9, 1)),
                                               (1, 3, (1, 2))])
def test_replica_ratio_never_gives_the_canary_more_than_asked_but_one_pod(weight, total, want):
    canary, stable = scaling.replica_ratio(weight, total)
    assert (canary, stable) == want
    effective = 100 * canary / total
    assert effective <= weight or canary == 1  # the one-pod minimum
    assert weight - effective < 100 / total  # at most one pod's worth below


def test_replica_ratio_refuses_what_is_not_a_split():
    for weight, total in ((0, 10), (100, 10), (10, 1)):
        with pytest.raises(InvalidInput):
            scaling.replica_ratio(weight, total)


def test_effective_weights_from_ready_pods():
    assert scaling.effective_weights({"blue": 9, "green": 1}) == {"blue": 90, "green": 10}
    assert scaling.effective_weights({"blue": 2, "green": 1}) == {"blue": 67, "green": 33}
    assert sum(scaling.effective_weights({"a": 1, "b": 1, "c": 1}).values()) == 100
    assert scaling.effective_weights({"blue": 0, "green": 0}) == {"blue": 0, "green": 0}


def test_the_issues_example_is_10_percent_at_rest_not_18():
    """canary 90/10, service router, HPA minimum 2: the canary pinned at 1 pod, the live
    slot's minimum 9 (its HPA may add more: the canary's share only falls)."""
    plan = scaling.split({"blue": 90, "green": 10}, "blue", "green", base=2, rest=HPA,
                         ratio_total=10)
    assert plan == {"green": Scale(1, 1, 1), "blue": Scale(9, 9, 10)}


def test_the_ratio_budget_is_at_least_what_the_live_slot_runs():
    """A live slot its HPA scaled to 12 pods keeps them all at 25 %: 12 of 16, not 8 of 10."""
    rest = {"blue": Rest(2, 20, True), "green": Rest(2, 20, True)}
    plan = scaling.split({"blue": 75, "green": 25}, "blue", "green", base=12, rest=rest,
                         ratio_total=10)
    assert plan["blue"].replicas >= 9  # at least 75 % of 12
    assert plan["green"] == Scale(3, 3, 3) and plan["blue"] == Scale(9, 9, 20)


def test_weighted_routers_pin_the_live_slot_and_let_the_canary_follow_its_weight():
    plan = scaling.split({"blue": 90, "green": 10}, "blue", "green", base=4, rest=HPA)
    assert plan["blue"] == Scale(4, 4, 10)  # a rollback lands on full capacity
    assert plan["green"] == Scale(1, 1, 10)  # ceil(4 x 10 %), free to scale with its load
    half = scaling.split({"blue": 50, "green": 50}, "blue", "green", base=4, rest=HPA)
    assert half["green"].min == 2
    promoted = scaling.split({"blue": 0, "green": 100}, "blue", "green", base=4, rest=HPA)
    assert promoted["green"] == Scale(4, 4, 10)  # full capacity before the switch
    assert promoted["blue"] == Scale(4, 4, 10)  # kept for an instant undo
    rollback = scaling.split({"blue": 100, "green": 0}, "blue", "green", base=4, rest=HPA)
    assert set(rollback) == {"blue"}  # the canary is left to be scaled down


def test_without_an_hpa_the_counts_are_the_replicas_and_rest_is_back_to_values():
    rest = {"blue": Rest(3, 3, False), "green": Rest(3, 3, False)}
    plan = scaling.split({"blue": 75, "green": 25}, "blue", "green", base=3, rest=rest,
                         ratio_total=4)
    assert plan == {"green": Scale(1, 1, 1), "blue": Scale(3, 3, 3)}
    assert scaling.at_rest(rest["blue"], running=True).replicas == 3
    assert scaling.at_rest(rest["green"], running=False).replicas == 0


def test_rest_bounds_from_the_charts_annotation_are_checked():
    assert Rest.from_dict({"min": 1, "max": 3, "hpa": True}) == Rest(1, 3, True)
    for bad in ({"min": 3, "max": 1}, {"min": "x", "max": 2}, {"max": 2}):
        with pytest.raises(InvalidInput):
            Rest.from_dict(bad)


@pytest.mark.parametrize("method,path,want", [
    ("GET", "/api/v1/namespaces/n/configmaps/r-rollout", ("", "configmaps", "get")),
    ("GET", "/api/v1/namespaces/n/pods?labelSelector=a%3Db", ("", "pods", "list")),
    ("GET", "/api/v1/namespaces/n/pods?watch=true", ("", "pods", "watch")),
    ("PATCH", "/apis/apps/v1/namespaces/n/deployments/r-blue", ("apps", "deployments", "patch")),
    ("PUT", "/apis/gateway.networking.k8s.io/v1/namespaces/n/httproutes/r",
     ("gateway.networking.k8s.io", "httproutes", "update")),
    ("POST", "/api/v1/namespaces/n/events", ("", "events", "create")),
    ("GET", "/api/v1/namespaces/n/pods/p/portforward", ("", "pods/portforward", "get")),
    ("DELETE", "/api/v1/namespaces/n/pods", ("", "pods", "deletecollection")),
    ("GET", "/apis/apps/v1", None),
    ("GET", "/api/v1/nodes", None),
])
def test_api_requests_map_to_rbac_rules(method, path, want):
    assert rbac_call(method, path) == want
