"""CLIWorker and BatchRunner against the real binary: order, ids, refused inputs, a child killed mid-batch."""

import os
import signal
import threading
import time

import pytest

from conftest import TASK_MODELS
from megatron_bert import CLIWorker, InputError, WorkerDied
from megatron_bert.worker import BatchRunner, find_binary


def test_batches_come_back_in_order_from_one_child(binary, minilm, sentences, reference_alone):
    with CLIWorker("embed", minilm, binary=binary, batch_size=1) as worker:
        pid = worker.pid
        for start in (0, 7, 300):
            batch = sentences[start:start + 50]
            outputs = worker.run([{"text": s["text"]} for s in batch])
            assert [o["embedding"] for o in outputs] == [reference_alone[s["id"]] for s in batch]
        assert worker.pid == pid and worker.starts == 1, "one child serves every batch"


def test_refused_inputs_are_recorded_or_raised(binary):
    model = str(TASK_MODELS / "pretraining")
    rows = {"id": ["a", "b", "c"], "text": ["Paris is the [MASK] of France.", "no mask here", "[MASK] lives in Paris."]}
    recorded = BatchRunner("fill-mask", model, binary=binary, on_error="record", args=["--top-k", "1"])
    columns = recorded(rows)
    recorded.close()
    assert columns["id"] == ["a", "b", "c"]
    assert columns["error"][0] is None and columns["error"][2] is None
    assert columns["error"][1] == 'standard input:2: no [MASK] in "no mask here": write [MASK] where the word to predict goes'
    assert columns["result"][1] is None and columns["result"][0].startswith('[{"score":')
    raising = BatchRunner("fill-mask", model, binary=binary)
    with pytest.raises(InputError, match="refused the row with id 'b': standard input:2: no \\[MASK\\]"):
        raising(rows)
    raising.close()


def test_a_child_killed_mid_batch_raises_and_the_next_batch_gets_a_new_one(binary, minilm, sentences, reference_alone):
    worker = CLIWorker("embed", minilm, binary=binary, batch_size=1)
    worker.start()
    first = worker.pid
    batch = [{"text": s["text"]} for s in sentences] * 3  # several seconds of work
    threading.Timer(1.0, os.kill, (first, signal.SIGKILL)).start()
    with pytest.raises(WorkerDied, match=r"ended after \d+ of 3000 answers: signal 9 \(SIGKILL\)"):
        worker.run(batch)
    outputs = worker.run([{"text": s["text"]} for s in sentences[:20]])
    assert worker.pid != first and worker.starts == 2
    assert [o["embedding"] for o in outputs] == [reference_alone[s["id"]] for s in sentences[:20]]
    os.kill(worker.pid, signal.SIGKILL)  # between batches: the next batch just starts a new child
    time.sleep(0.2)
    assert len(worker.run([{"text": "Hello."}])) == 1 and worker.starts == 3
    worker.close()


def test_clear_errors_for_a_missing_binary_column_or_task(binary, tmp_path):
    with pytest.raises(FileNotFoundError, match="not an executable file"):
        find_binary(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown task 'translate'"):
        CLIWorker("translate", binary=binary)
    runner = BatchRunner("qa", str(TASK_MODELS / "qa"), binary=binary)
    with pytest.raises(KeyError, match="qa needs a column 'question'"):
        runner({"text": ["x"]})
    runner.close()


def test_the_field_table_matches_the_binarys_task_list(binary):
    """TASK_FIELDS and OBJECT_RESULTS are what `megatron-bert tasks --json` declares (each task is declared once, in
    the binary's TaskDescriptor): a task added there without its worker entry, or a field renamed, fails here."""
    import json
    import subprocess

    from megatron_bert.worker import OBJECT_RESULTS, TASK_FIELDS

    listed = json.loads(subprocess.run([binary, "tasks", "--json"], check=True, capture_output=True, text=True).stdout)
    declared = {task["name"]: (tuple(f["name"] for f in task["fields"] if f["required"]),
                               tuple(f["name"] for f in task["fields"] if not f["required"])) for task in listed}
    assert TASK_FIELDS == declared
    objects = {task["name"]: tuple(sorted(task["result"]["object"])) for task in listed if "object" in task["result"]}
    assert {name: tuple(sorted(members)) for name, members in OBJECT_RESULTS.items()} == objects
