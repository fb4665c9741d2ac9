"""One long-lived ``megatron-bert TASK --input - --json --on-error record`` child process, fed batch after batch.

The child loads the model once and answers every batch written to its standard input while the pipe stays
open (the command answers what it has read instead of waiting for more). Each input line carries its position
in the batch as ``"id"``; the command copies it onto its output line, so answers are checked against the rows
they belong to. A bad input comes back as ``{"id": …, "error": …}`` and the child goes on; a child that dies
(killed, out of memory) raises ``WorkerDied`` with its exit status and the end of its standard error, and the
next batch starts a fresh child.

    >>> worker = CLIWorker("embed", model="/models/all-MiniLM-L6-v2")
    >>> worker.run([{"text": "A sentence."}, {"text": "Another one."}])[0]["embedding"][:2]
    [0.0123, -0.0456]
    >>> worker.close()
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

log = logging.getLogger("megatron_bert")

#: The JSON fields each task reads from an input line: (required, optional). The binary declares them (`megatron-bert
#: tasks --json`); tests/test_worker.py checks that this table agrees.
TASK_FIELDS: Dict[str, tuple] = {
    "embed": (("text",), ()),
    "fill-mask": (("text",), ()),
    "ner": (("text",), ()),
    "classify": (("text",), ("text_pair",)),
    "nsp": (("text", "text_pair"), ()),
    "qa": (("question", "context"), ()),
    "multiple-choice": (("prompt", "choices"), ()),
}

#: The members of each task's result object; the other tasks' results are lists (the ``result`` member).
OBJECT_RESULTS: Dict[str, tuple] = {
    "embed": ("embedding",),
    "nsp": ("is_next", "is_next_probability"),
}


class WorkerDied(RuntimeError):
    """The child process ended in the middle of a batch. Retrying the batch is safe: the next one starts a new child."""


class InputError(ValueError):
    """The command refused an input (no ``[MASK]``, a missing field, …); the message names the row."""


def installed_binary() -> Optional[str]:
    """The executable the ``megatron-bert`` wheel carries beside this module (``megatron_bert/bin/megatron-bert``), or
    None (a source installation of the package has none)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "megatron-bert")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def find_binary(binary: Optional[str] = None) -> str:
    """The megatron-bert executable: ``binary``, else ``$MEGATRON_BERT_BINARY``, else the one installed with this
    package (the wheel's), else ``megatron-bert`` on the PATH."""
    candidate = binary or os.environ.get("MEGATRON_BERT_BINARY") or installed_binary() or shutil.which("megatron-bert")
    if not candidate:
        raise FileNotFoundError(
            "megatron-bert not found: `pip install megatron-bert` (the wheel carries it), or pass "
            "binary=/path/to/megatron-bert, set MEGATRON_BERT_BINARY, or put it on the PATH")
    if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        raise FileNotFoundError(f"megatron-bert binary {candidate!r} is not an executable file on this machine")
    return candidate


def describe_status(returncode: Optional[int]) -> str:
    """'exit status 1' or 'signal 9 (SIGKILL)'."""
    if returncode is None:
        return "no exit status yet"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"signal {-returncode} ({name})"
    return f"exit status {returncode}"


class CLIWorker:
    """A ``megatron-bert`` child for one task, started on first use (or by ``start``) and reused for every batch.

    Args:
        task: embed, fill-mask, ner, classify, nsp, qa or multiple-choice.
        model: the model directory (or anything ``--model`` takes); None for the command's default model.
        binary: the executable (see ``find_binary``).
        args: more command-line options, e.g. ``["--pooling", "cls", "--normalize"]``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the command's default).
        dtype: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        batch_size: sequences per forward pass inside the child.
        env: the child's environment (default: this process's). The child gets exactly this; unlike ``RDD.pipe``,
            nothing is emptied.
        stderr_lines: how many of the child's last standard-error lines an error message quotes.
    """

    def __init__(self, task: str, model: Optional[str] = None, *, binary: Optional[str] = None,
                 args: Sequence[str] = (), device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: Optional[int] = None, env: Optional[Mapping[str, str]] = None, stderr_lines: int = 50):
        if task not in TASK_FIELDS:
            raise ValueError(f"unknown task {task!r}: one of {', '.join(TASK_FIELDS)}")
        self.task = task
        self.command = [find_binary(binary), task, "--input", "-", "--json", "--on-error", "record", "--quiet"]
        if model is not None:
            self.command += ["--model", str(model)]
        if device is not None:
            self.command += ["--device", device]
        if dtype is not None:
            self.command += ["--dtype", dtype]
        if batch_size is not None:
            self.command += ["--batch-size", str(batch_size)]
        self.command += [str(a) for a in args]
        self.env = dict(os.environ if env is None else env)
        self._stderr: collections.deque = collections.deque(maxlen=stderr_lines)
        self._process: Optional[subprocess.Popen] = None
        self._stderr_thread: Optional[threading.Thread] = None
        self.starts = 0

    # -- the child's life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the child (the model loads now), unless it is running."""
        if self._process is not None and self._process.poll() is None:
            return
        self._stderr.clear()
        self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=self.env)
        self.starts += 1
        stream = self._process.stderr
        self._stderr_thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._stderr_thread.start()
        log.info("started %s (pid %d)", " ".join(self.command), self._process.pid)

    def _drain(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._stderr.append(line)
            log.debug("megatron-bert: %s", line)

    @property
    def pid(self) -> Optional[int]:
        """The running child's process id."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def close(self, timeout: float = 30) -> None:
        """Ends the child: closes its input (it finishes what it has and exits), killing it after ``timeout`` s."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> "CLIWorker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close(timeout=5)
        except Exception:
            pass

    # -- batches ----------------------------------------------------------------------------------------------

    def run(self, records: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """The command's output object for each record (JSON-ready mappings of the task's fields), in order.

        An input the command refused gives ``{"error": "why"}``; a list result (fill-mask, ner, …) is
        ``{"result": [...]}``. Raises ``WorkerDied`` when the child ends before answering every record.
        """
        if not records:
            return []
        if self._process is not None and self._process.poll() is not None:
            # Died between batches: nothing of this batch is lost, so start a new child and go on.
            log.warning("megatron-bert %s (pid %d) ended between batches (%s); starting a new one%s", self.task,
                        self._process.pid, describe_status(self._process.returncode),
                        f"; its standard error ends with:\n{self.stderr_tail()}" if self._stderr else "")
            self._process = None
        self.start()
        process = self._process
        payload = "".join(json.dumps(dict(record, id=i), ensure_ascii=False) + "\n" for i, record in enumerate(records))
        failure: List[BaseException] = []

        def write() -> None:
            try:
                process.stdin.write(payload.encode("utf-8"))
                process.stdin.flush()
            except (BrokenPipeError, OSError) as error:  # the child died: the reader sees the end of its output
                failure.append(error)

        # Written from a thread while this one reads: a batch larger than the pipe's buffers cannot deadlock.
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        outputs: List[Dict[str, Any]] = []
        try:
            for i in range(len(records)):
                line = process.stdout.readline()
                if not line:
                    process.wait(timeout=10)
                    self._died(f"after {i} of {len(records)} answers")
                output = json.loads(line)
                if output.get("id") != i:
                    raise RuntimeError(f"megatron-bert answered out of order: expected id {i}, got {line[:200]!r}")
                del output["id"]
                outputs.append(output)
        finally:
            writer.join(timeout=60)
        return outputs

    def _died(self, when: str) -> None:
        process, self._process = self._process, None
        status = describe_status(process.returncode if process is not None else None)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        message = (f"megatron-bert {self.task} (pid {process.pid if process else '?'}) ended {when}: {status}"
                   + (f"; its standard error ends with:\n{self.stderr_tail()}" if self._stderr else ""))
        log.warning("%s", message)
        raise WorkerDied(message)


def records_from_columns(task: str, columns: Mapping[str, Sequence[Any]], count: int,
                         input_columns: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
    """The task's input objects from a batch's columns. ``input_columns`` maps a task field to the column holding
    it (default: the column of the same name); an optional field whose column is absent is left out."""
    required, optional = TASK_FIELDS[task]
    names = dict(input_columns or {})
    fields = []
    for field in required + optional:
        column = names.get(field, field)
        if column not in columns:
            if field in required:
                raise KeyError(f"{task} needs a column {column!r} (for {field!r}); the batch has {sorted(columns)}"
                               + ("" if field in names else f"; map another column with input_columns={{{field!r}: 'NAME'}}"))
            continue
        fields.append((field, columns[column]))
    records = []
    for i in range(count):
        record = {}
        for field, values in fields:
            value = values[i]
            if hasattr(value, "tolist"):  # numpy scalars and arrays
                value = value.tolist()
            if value is not None:
                record[field] = value
        records.append(record)
    return records


def result_columns(task: str, outputs: Sequence[Mapping[str, Any]], ids: Optional[Sequence[Any]] = None,
                   on_error: str = "raise", result_format: str = "json") -> Dict[str, List[Any]]:
    """The outputs as columns: embed → ``embedding``; nsp → ``is_next``, ``is_next_probability``; the list tasks →
    ``result`` (the JSON text the command printed, or with ``result_format="python"`` the parsed lists). With
    ``on_error="record"`` an ``error`` column holds each refused input's reason (None elsewhere); with "raise"
    the first refused input raises ``InputError`` naming its id."""
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', not {on_error!r}")
    names = OBJECT_RESULTS.get(task, ("result",))
    columns: Dict[str, List[Any]] = {name: [] for name in names}
    errors: List[Optional[str]] = []
    for i, output in enumerate(outputs):
        error = output.get("error")
        if error is not None and on_error == "raise":
            where = f"row with id {ids[i]!r}" if ids is not None else f"row {i} of the batch"
            raise InputError(f"megatron-bert {task} refused the {where}: {error}")
        errors.append(error)
        for name in names:
            value = output.get(name)
            if name == "result" and value is not None and result_format == "json":
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            columns[name].append(value)
    if on_error == "record":
        columns["error"] = errors
    return columns


def to_columns(batch: Any) -> tuple:
    """(columns as a dict of sequences, row count) from a Ray / Spark batch: a dict of numpy arrays or lists, a
    pandas DataFrame, or a pyarrow Table / RecordBatch."""
    if hasattr(batch, "to_pydict"):  # pyarrow
        columns = batch.to_pydict()
    elif hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas
        columns = {name: batch[name].tolist() for name in batch.columns}
    elif isinstance(batch, Mapping):
        columns = dict(batch)
    else:
        raise TypeError(f"a batch must be a dict of columns, a pandas DataFrame or a pyarrow table, not {type(batch).__name__}")
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        raise ValueError(f"the batch's columns have different lengths: {sorted(counts)}")
    return columns, (counts.pop() if counts else 0)


def plain(values: Iterable[Any]) -> List[Any]:
    """Python values (numpy scalars and arrays become lists and numbers)."""
    return [v.tolist() if hasattr(v, "tolist") else v for v in values]


class BatchRunner:
    """A task over batches of columns: the input columns in, ``id_column``, ``keep_columns`` and the result columns
    out (see ``result_columns``), through one ``CLIWorker``. Ray's and Spark's adapters are thin wrappers of it."""

    def __init__(self, task: str, model: Optional[str] = None, *, input_columns: Optional[Mapping[str, str]] = None,
                 id_column: str = "id", keep_columns: Sequence[str] = (), on_error: str = "raise",
                 result_format: str = "json", **worker_options: Any):
        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error must be 'raise' or 'record', not {on_error!r}")
        self.task = task
        self.input_columns = dict(input_columns or {})
        self.id_column = id_column
        self.keep_columns = list(keep_columns)
        self.on_error = on_error
        self.result_format = result_format
        self.worker = CLIWorker(task, model, **worker_options)

    def __call__(self, batch: Any) -> Dict[str, List[Any]]:
        columns, count = to_columns(batch)
        records = records_from_columns(self.task, columns, count, self.input_columns)
        outputs = self.worker.run(records)
        ids = plain(columns[self.id_column]) if self.id_column in columns else None
        result: Dict[str, List[Any]] = {}
        if ids is not None:
            result[self.id_column] = ids
        for name in self.keep_columns:
            if name not in columns:
                raise KeyError(f"keep_columns names {name!r}, which the batch does not have ({sorted(columns)})")
            result[name] = plain(columns[name])
        result.update(result_columns(self.task, outputs, ids, self.on_error, self.result_format))
        return result

    def close(self) -> None:
        self.worker.close()
