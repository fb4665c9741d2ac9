"""NVIDIA's Megatron-BERT (and BERT) from Python, run by MegatronBERT.swift's ``megatron-bert`` command.

``Model`` runs every task (``Model(path).embed([...])``, ``.fill_mask(...)``, ``.ner(...)`` …); ``worker.CLIWorker``
owns one long-lived child process; ``ray_data.MegatronBERT`` is a callable class for ``Dataset.map_batches``;
``spark`` has functions for ``mapInArrow`` and ``RDD.mapPartitions``. The wheel (``pip install megatron-bert``)
carries the binary: ``megatron-bert`` is on the environment's PATH and found here without a ``binary=`` argument.
"""

from .model import Model
from .worker import CLIWorker, InputError, WorkerDied, find_binary

__all__ = ["CLIWorker", "InputError", "Model", "WorkerDied", "find_binary"]
