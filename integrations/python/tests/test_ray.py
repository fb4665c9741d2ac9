"""A real local Ray cluster (2 CPUs) embeds 1,000 real sentences with the MiniLM weights through 2 actors, each
with one long-lived megatron-bert child: every id comes out exactly once with the single-process CLI's vector."""

import glob
import os
import signal
import subprocess
import threading
import time

import pytest

ray = pytest.importorskip("ray")  # scripts/test-workers.sh installs ray[data]; this file is run by it

from conftest import SENTENCES
from megatron_bert.ray_data import MegatronBERT, retry_worker_deaths


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    retry_worker_deaths()
    yield ray
    ray.shutdown()


def embed(binary, minilm, **child):
    """binary: the worker_binary fixture (None: the workers find the installed wheel's)."""
    # Read first: the two actors take both of the cluster's CPUs, leaving none for read tasks.
    dataset = ray.data.read_json(str(SENTENCES)).materialize()
    vectors = dataset.map_batches(MegatronBERT, fn_constructor_kwargs={"task": "embed", "model": minilm, "binary": binary, **child},
                                  batch_size=50, compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)
    return vectors.take_all()


def check_every_id_once(rows, reference, exact=True):
    ids = [row["id"] for row in rows]
    assert sorted(ids) == list(range(1000)), f"{len(ids)} rows, {len(set(ids))} distinct ids"
    for row in rows:
        vector = list(row["embedding"])
        if exact:
            assert vector == reference[row["id"]], f"id {row['id']}"
        else:
            assert max(abs(a - b) for a, b in zip(vector, reference[row["id"]])) <= 1e-5, f"id {row['id']}"


def test_two_actors_give_every_id_once_with_the_single_process_vectors(cluster, worker_binary, minilm, reference_alone, reference_batched):
    # Each sentence in a batch of its own: JSON-identical to the single process on every CPU.
    check_every_id_once(embed(worker_binary, minilm, batch_size=1), reference_alone)
    # The default batching: how rows meet in batches differs between the job and the single process. On CPUs where
    # oneDNN's brgemm products run (AVX-512) the bits are identical too; elsewhere the last bits may differ.
    check_every_id_once(embed(worker_binary, minilm), reference_batched, exact=False)


def session_logs():
    return ray._private.worker._global_node.get_session_dir_path() + "/logs"


def test_a_killed_child_costs_a_retry_not_a_row(cluster, binary, worker_binary, minilm, reference_alone):
    killed = []

    def kill_one_child_mid_job():
        deadline = time.time() + 60
        while time.time() < deadline:
            pids = subprocess.run(["pgrep", "-f", f"^{binary} embed"], capture_output=True, text=True).stdout.split()
            if len(pids) >= 2:
                time.sleep(1.5)  # both actors are working through their batches
                os.kill(int(pids[0]), signal.SIGKILL)
                killed.append(int(pids[0]))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_child_mid_job, daemon=True)
    killer.start()
    rows = embed(worker_binary, minilm, batch_size=1)
    killer.join()
    assert killed, "no child was seen to kill"
    check_every_id_once(rows, reference_alone)
    # The failure is in the actor's log (Ray keeps each worker's standard error).
    deadline = time.time() + 10
    while True:
        text = "".join(open(path, errors="replace").read() for path in glob.glob(session_logs() + "/worker-*.err"))
        if f"(pid {killed[0]}) ended" in text:
            assert "signal 9 (SIGKILL)" in text
            break
        assert time.time() < deadline, "the child's death is not in the workers' logs"
        time.sleep(0.5)
