"""Execution semantics: skipping, laziness, caching, interruption, failures, events."""

from __future__ import annotations

import sys
import threading

import pytest

from conftest import link, workflow


def branching(score: float, label_low: str = "low", label_high: str = "high") -> dict:
    return workflow({
        "prompt": {"type": "Text", "inputs": {"text": "a red ball"}},
        "score": {"type": "Float", "inputs": {"value": score}},
        "gate": {"type": "QualityBranch", "inputs": {"prompt": link("prompt", "text"), "score": link("score", "value")}},
        "improve": {"type": "TestCount", "inputs": {"text": link("gate", "low"), "label": label_low}},
        "detail": {"type": "TextConcat", "inputs": {"first": link("improve", "text"), "second": "on grass"}},
        "keep": {"type": "TestCount", "inputs": {"text": link("gate", "high"), "label": label_high}},
        "merge": {"type": "Merge", "inputs": {"first": link("keep", "text"), "second": link("detail", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("merge", "value")}},
        "show_low": {"type": "ShowText", "inputs": {"text": link("detail", "text")}},
    })


def test_high_score_skips_low_branch(executor, events, calls):
    result = executor.run(branching(0.9), on_event=events)

    assert result.status == "succeeded"
    assert calls["low"] == 0
    assert calls["high"] == 1
    assert result.outputs["show"] == {"text": ["a red ball"]}
    for node in ("improve", "detail", "show_low"):
        assert result.nodes[node].status == "skipped"
        assert result.nodes[node].reason == "inactive_branch"
        assert events.names(node) == ["node.skipped"]


def test_low_score_runs_low_branch(executor, calls):
    result = executor.run(branching(0.2))

    assert result.status == "succeeded"
    assert calls["low"] == 1
    assert calls["high"] == 0
    assert result.outputs["show"] == {"text": ["a red ball on grass"]}
    assert result.outputs["show_low"] == {"text": ["a red ball on grass"]}
    assert result.nodes["keep"].status == "skipped"


def test_threshold_is_inclusive(executor):
    document = branching(0.6)
    result = executor.run(document)
    assert result.outputs["show"] == {"text": ["a red ball"]}


def test_merge_picks_live_input(executor):
    document = workflow({
        "a": {"type": "Text", "inputs": {"text": "first"}},
        "b": {"type": "Text", "inputs": {"text": "second"}},
        "merge": {"type": "Merge", "inputs": {"first": link("a", "text"), "second": link("b", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("merge", "value")}},
    })
    result = executor.run(document)
    assert result.outputs["show"] == {"text": ["first"]}
    assert result.nodes["b"].status == "skipped"
    assert result.nodes["b"].reason == "not_needed"


def test_merge_with_only_second_connected(executor):
    document = workflow({
        "b": {"type": "Text", "inputs": {"text": "second"}},
        "merge": {"type": "Merge", "inputs": {"second": link("b", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("merge", "value")}},
    })
    assert executor.run(document).outputs["show"] == {"text": ["second"]}


def test_merge_of_two_skipped_inputs_is_skipped(executor):
    document = workflow({
        "p": {"type": "Text", "inputs": {"text": "x"}},
        "gate": {"type": "QualityBranch", "inputs": {"prompt": link("p", "text"), "score": 0.1}},
        "merge": {"type": "Merge", "inputs": {"first": link("gate", "high"), "second": link("gate", "high")}},
        "show": {"type": "ShowText", "inputs": {"text": link("merge", "value")}},
    })
    result = executor.run(document)
    assert result.status == "succeeded"
    assert result.nodes["merge"].status == "executed"
    assert result.nodes["show"].status == "skipped"
    assert result.nodes["show"].reason == "inactive_branch"
    assert result.outputs == {}


def test_switch_computes_only_selected_input(executor, calls):
    document = workflow({
        "yes": {"type": "TestCount", "inputs": {"text": "yes", "label": "yes"}},
        "feeds_no": {"type": "TestCount", "inputs": {"text": "no", "label": "feeds_no"}},
        "no": {"type": "TestCount", "inputs": {"text": link("feeds_no", "text"), "label": "no"}},
        "switch": {"type": "Switch", "inputs": {"select": True, "on_true": link("yes", "text"), "on_false": link("no", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("switch", "value")}},
    })
    result = executor.run(document)

    assert result.outputs["show"] == {"text": ["yes"]}
    assert calls == {"yes": 1}
    assert result.nodes["no"].reason == "not_needed"
    assert result.nodes["feeds_no"].reason == "not_needed"


def test_switch_false_computes_other_input(executor, calls):
    document = workflow({
        "yes": {"type": "TestCount", "inputs": {"text": "yes", "label": "yes"}},
        "no": {"type": "TestCount", "inputs": {"text": "no", "label": "no"}},
        "switch": {"type": "Switch", "inputs": {"select": False, "on_true": link("yes", "text"), "on_false": link("no", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("switch", "value")}},
    })
    assert executor.run(document).outputs["show"] == {"text": ["no"]}
    assert calls == {"no": 1}


def chain(length: int, first: str = "a") -> dict:
    nodes = {"n0": {"type": "Text", "inputs": {"text": first}}}
    for index in range(1, length):
        nodes[f"n{index}"] = {"type": "TextConcat", "inputs": {"first": link(f"n{index - 1}", "text"), "second": "b", "separator": ""}}
    nodes["show"] = {"type": "ShowText", "inputs": {"text": link(f"n{length - 1}", "text")}}
    return workflow(nodes)


def test_second_identical_run_is_all_cached(executor, events):
    document = chain(5)
    executor.run(document)
    result = executor.run(document, on_event=events)

    assert {outcome.status for outcome in result.nodes.values()} == {"cached"}
    assert result.outputs["show"] == {"text": ["abbbb"]}
    assert not events.of("node.started")


def test_changed_value_reruns_node_and_descendants(executor):
    document = chain(6)
    executor.run(document)
    document["nodes"]["n3"]["inputs"]["second"] = "X"
    result = executor.run(document)

    executed = sorted(node for node, outcome in result.nodes.items() if outcome.status == "executed")
    cached = sorted(node for node, outcome in result.nodes.items() if outcome.status == "cached")
    assert executed == ["n3", "n4", "n5", "show"]
    assert cached == ["n0", "n1", "n2"]
    assert result.outputs["show"] == {"text": ["abbXbb"]}


def test_copied_subgraph_hits_cache(executor, calls):
    first = workflow({
        "p": {"type": "Text", "inputs": {"text": "same"}},
        "c": {"type": "TestCount", "inputs": {"text": link("p", "text"), "label": "copy"}},
        "show": {"type": "ShowText", "inputs": {"text": link("c", "text")}},
    })
    copy = workflow({
        "other_p": {"type": "Text", "inputs": {"text": "same"}},
        "other_c": {"type": "TestCount", "inputs": {"text": link("other_p", "text"), "label": "copy"}},
        "other_show": {"type": "ShowText", "inputs": {"text": link("other_c", "text")}},
    })
    executor.run(first)
    result = executor.run(copy)

    assert calls["copy"] == 1
    assert {outcome.status for outcome in result.nodes.values()} == {"cached"}
    assert result.outputs["other_show"] == {"text": ["same"]}


def test_cache_bound_evicts_entries(registry, tmp_path):
    from nodegraph.cache import OutputCache
    from nodegraph.executor import Executor

    executor = Executor(registry, cache=OutputCache(max_entries=3), output_dir=tmp_path)
    executor.run(chain(10))
    assert executor.cache.stats()["entries"] == 3
    result = executor.run(chain(10))
    assert result.nodes["show"].status == "cached"
    assert result.nodes["n9"].status == "cached"
    assert result.nodes["n8"].status == "cached"
    assert result.nodes["n7"].reason == "not_needed"


def test_interruption_between_nodes(executor, events):
    interrupt = threading.Event()

    def interrupt_after_first_node(event):
        events(event)
        if event["event"] == "node.finished":
            interrupt.set()

    result = executor.run(chain(5), on_event=interrupt_after_first_node, interrupt=interrupt)

    assert result.status == "interrupted"
    assert len(events.of("node.finished")) == 1
    assert events[-1]["event"] == "run.interrupted"
    assert result.nodes["show"].reason == "run_interrupted"


def test_interruption_inside_node(executor):
    wait_type = sys.modules["nodegraph_pack_counting"].Wait
    wait_type.started.clear()
    interrupt = threading.Event()
    document = workflow({
        "w": {"type": "TestWait", "inputs": {"text": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("w", "text")}},
    })
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", executor.run(document, interrupt=interrupt)))
    worker.start()
    assert wait_type.started.wait(10)
    interrupt.set()
    worker.join(10)

    assert box["result"].status == "interrupted"
    assert box["result"].nodes["w"].status == "skipped"


def test_failing_node_fails_only_its_run(executor, events):
    failing = workflow({
        "p": {"type": "Text", "inputs": {"text": "x"}},
        "f": {"type": "TestFail", "inputs": {"text": link("p", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("f", "text")}},
    })
    result = executor.run(failing, on_event=events)

    assert result.status == "failed"
    assert result.error == {"node": "f", "type": "TestFail", "error_type": "ZeroDivisionError", "message": "division by zero"}
    failed = events.of("node.failed")[0]
    assert failed["node"] == "f"
    assert failed["message"] == "division by zero"
    assert failed["inputs"] == {"text": "x", "kind": "bug"}
    assert result.nodes["show"].status == "skipped"
    assert result.nodes["show"].reason == "run_failed"
    assert events[-1]["event"] == "run.failed"

    after = executor.run(chain(3))
    assert after.status == "succeeded"
    assert after.outputs["show"] == {"text": ["abb"]}


def test_failed_node_is_not_cached(executor, calls):
    failing = workflow({
        "f": {"type": "TestFail", "inputs": {"text": "x", "kind": "node_error"}},
        "show": {"type": "ShowText", "inputs": {"text": link("f", "text")}},
    })
    first = executor.run(failing)
    second = executor.run(failing)
    assert first.nodes["f"].status == "failed"
    assert second.nodes["f"].status == "failed"
    assert second.error["message"] == "input 'text' is 'x'; give a longer text"


def test_every_node_has_exactly_one_outcome(executor, events):
    document = branching(0.9)
    document["nodes"]["lonely"] = {"type": "Text", "inputs": {"text": "unused"}}
    result = executor.run(document, on_event=events)

    assert set(result.nodes) == set(document["nodes"])
    ends = [event["node"] for event in events if event["event"] in ("node.finished", "node.cached", "node.skipped", "node.failed")]
    assert sorted(ends) == sorted(document["nodes"])
    assert result.nodes["lonely"].reason == "not_needed"


def test_events_have_required_fields(executor, events):
    executor.run(branching(0.2), on_event=events)

    assert events[0]["event"] == "run.started"
    assert events[-1]["event"] == "run.succeeded"
    run_ids = {event["run"] for event in events}
    assert len(run_ids) == 1
    for event in events:
        assert isinstance(event["time"], float)
        if event["event"].startswith("node."):
            assert event["node"]
            assert event["type"]
    finished = {event["node"]: event for event in events.of("node.finished")}
    assert finished["show"]["display"] == {"text": ["a red ball on grass"]}
    assert finished["score"]["outputs"] == {"value": 0.2}


def test_muted_node_skips_consumers(executor, calls):
    document = chain(3)
    document["nodes"]["n1"]["mode"] = "mute"
    result = executor.run(document)

    assert result.nodes["n1"].reason == "muted"
    assert result.nodes["n2"].reason == "inactive_branch"
    assert result.nodes["show"].status == "skipped"


def test_bypassed_node_passes_input_through(executor, calls):
    document = workflow({
        "p": {"type": "Text", "inputs": {"text": "through"}},
        "echo": {"type": "TestEcho", "mode": "bypass", "inputs": {"value": link("p", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("echo", "value")}},
    })
    result = executor.run(document)

    assert result.outputs["show"] == {"text": ["through"]}
    assert result.nodes["echo"].reason == "bypassed"
    assert calls["echo"] == 0


def test_targets_limit_evaluation(executor, calls):
    document = branching(0.9)
    result = executor.run(document, targets=["score"])
    assert result.nodes["score"].status == "executed"
    assert result.nodes["gate"].reason == "not_needed"
    assert result.values["score"] == {"value": 0.9}


def test_release_callback_after_last_consumer(executor, events):
    release_type = sys.modules["nodegraph_pack_counting"].Release
    release_type.released.clear()
    document = workflow({
        "r": {"type": "TestRelease", "inputs": {"text": "x"}},
        "a": {"type": "TestCount", "inputs": {"text": link("r", "text"), "label": "a"}},
        "b": {"type": "TextConcat", "inputs": {"first": link("a", "text"), "second": link("r", "text")}},
        "show": {"type": "ShowText", "inputs": {"text": link("b", "text")}},
    })
    order = []
    executor.run(document, on_event=lambda event: order.append((event["event"], event.get("node"), list(release_type.released))))

    assert release_type.released == ["r"]
    show_started = next(item for item in order if item[:2] == ("node.started", "show"))
    assert show_started[2] == ["r"]


def test_ten_thousand_node_chain(executor):
    limit = sys.getrecursionlimit()
    result = executor.run(chain(10_000))

    assert result.status == "succeeded"
    assert result.outputs["show"]["text"][0] == "a" + "b" * 9_999
    assert sys.getrecursionlimit() == limit


def test_invalid_run_reports_problems(executor, events):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": link("gone", "text")}}})
    result = executor.run(document, on_event=events)

    assert result.status == "invalid"
    assert [event["event"] for event in events] == ["run.invalid"]
    assert events[0]["errors"][0]["code"] == "missing_node"


def test_params_override_inputs(executor):
    document = branching(0.9)
    document["params"] = {"score": ["score", "value"], "prompt": ["prompt", "text"]}
    result = executor.run(document, params={"score": "0.1", "prompt": "a cat"}, params_as_text=True)
    assert result.outputs["show"] == {"text": ["a cat on grass"]}


@pytest.mark.parametrize("value", ["abc", "nan"])
def test_invalid_param_value_is_invalid_run(executor, value):
    document = branching(0.9)
    document["params"] = {"score": ["score", "value"]}
    result = executor.run(document, params={"score": value}, params_as_text=True)
    assert result.status == "invalid"
    assert result.problems[0].code == "invalid_param_value"
    assert result.problems[0].node == "score"
