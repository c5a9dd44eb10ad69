"""Gates that really gate: the publishing verdict, dbt singular tests as blocking checks, checks on every stage."""

import dagster as dg
import pytest

from dagster_project.defs.publish.gates import gate, run_gate


def test_gate_refuses_a_blocking_check_without_result_and_names_it() -> None:
    planned = {
        "a:c1": ("a", True),
        "a:c2": ("a", True),
        "a:soft": ("a", False),
        "b:c": ("b", True),
        "segmentation_model:m": ("segmentation_model", True),
    }
    v = gate(planned, {"a:c1": (True, "ERROR")}, materialized={"a", "segmentation_model"})
    assert v.refused and v.missing == ["a:c2"]  # non-blocking, not-materialised and model checks are not gates
    assert "a:c2" in v.reason() and "skipped is not passed" in v.reason()


def test_gate_failed_warned_passed() -> None:
    v = gate({}, {"a:x": (False, "ERROR"), "a:y": (False, "WARN"), "a:z": (True, "ERROR")}, materialized={"a"})
    assert v.failed == ["a:x"] and v.warned == ["a:y"] and v.passed == ["a:z"] and v.refused
    assert not gate({}, {"a:y": (False, "WARN")}, {"a"}).refused


def test_a_skipped_blocking_check_stops_publishing() -> None:
    """A blocking check that emits no result lets Dagster run the downstream step; the gate refuses there."""

    # like the dbt steps: a subsettable multi-asset, whose check outputs are optional (a test dbt did not select)
    @dg.multi_asset(
        specs=[dg.AssetSpec("upstream", skippable=True)],
        can_subset=True,
        check_specs=[
            dg.AssetCheckSpec("emitted", asset="upstream", blocking=True),
            dg.AssetCheckSpec("never_emitted", asset="upstream", blocking=True),
        ],
    )
    def upstream():
        yield dg.MaterializeResult(
            asset_key="upstream", check_results=[dg.AssetCheckResult(check_name="emitted", passed=True)]
        )

    @dg.asset(deps=[upstream])
    def publisher(context: dg.AssetExecutionContext) -> None:
        verdict = run_gate(context.instance, context.run_id, context.job_def.asset_layer.asset_graph)
        if verdict.refused:
            raise dg.Failure(f"not publishing: {verdict.reason()}", allow_retries=False)

    with dg.instance_for_test() as instance:
        result = dg.materialize([upstream, publisher], instance=instance, raise_on_error=False)
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        assert [e.step_key for e in failures] == ["publisher"]
        assert "upstream:never_emitted" in failures[0].step_failure_data.error.message


@pytest.fixture(scope="module")
def graph():
    from dagster_project.definitions import defs

    return defs.resolve_asset_graph()


@pytest.mark.parametrize(
    ("asset", "test"),
    [
        ("reference/size_class_cases", "assert_size_class_cases"),
        ("marts/dim_client", "assert_dim_client_covers_every_client"),
        ("marts/dim_client", "assert_dim_client_rating_consistent"),
        ("marts/client_features", "assert_client_features_scorable_population"),
    ],
)
def test_dbt_singular_tests_are_blocking_checks(graph, asset: str, test: str) -> None:
    key = dg.AssetCheckKey(dg.AssetKey(asset.split("/")), test)
    assert key in graph.asset_check_keys
    assert graph.get_check_spec(key).blocking


def test_application_and_published_checks_exist(graph) -> None:
    names = {(ck.asset_key.to_user_string(), ck.name) for ck in graph.asset_check_keys}
    for expected in [
        ("app/client_product_recommendations", "recommendations_only_eligible"),
        ("app/risk_early_warnings", "warnings_of_known_clients"),
        ("app/segment_policy", "policy_covers_every_segment"),
        ("published_warehouse", "opens_read_only"),
        ("published_warehouse", "holds_manifest_tables"),
        ("published_warehouse", "every_column_commented"),
    ]:
        assert expected in names


def test_every_asset_has_an_owner(graph) -> None:
    from dagster_project.definitions import OWNER

    missing = [k.to_user_string() for k in graph.get_all_asset_keys() if OWNER not in (graph.get(k).owners or [])]
    assert not missing, missing


def test_the_models_failed_checks_decide_promotion_not_publishing() -> None:
    # ERROR severity in the UI (they are errors of the model), but a failing challenger only stays unpromoted
    v = gate(
        {"segmentation_model:stability_clusterboot": ("segmentation_model", False)},
        {"segmentation_model:stability_clusterboot": (False, "ERROR"), "marts/dim_client:not_null": (False, "ERROR")},
        materialized={"segmentation_model", "marts/dim_client"},
    )
    assert v.warned == ["segmentation_model:stability_clusterboot"]
    assert v.failed == ["marts/dim_client:not_null"] and v.refused
