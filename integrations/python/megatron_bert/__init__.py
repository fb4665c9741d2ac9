"""Run MegatronBERT.swift's ``megatron-bert`` command as long-lived workers of Ray Data and Spark jobs.

``worker.CLIWorker`` owns one child process; ``ray_data.MegatronBERT`` is a callable class for
``Dataset.map_batches``; ``spark`` has functions for ``mapInArrow`` and ``RDD.mapPartitions``.
"""

from .worker import CLIWorker, InputError, WorkerDied, find_binary

__all__ = ["CLIWorker", "InputError", "WorkerDied", "find_binary"]
