"""Exports written on a dask.distributed cluster: ``tfrecord_io.export(..., client=client)``.

:mod:`.shardplan` computes the shard boundaries up front (pure arithmetic, no dask);
:mod:`.tasks` holds what runs on the workers (sizing records, writing one shard);
:mod:`.export` drives them from the client and commits the shards. Importing this package
imports neither dask nor distributed: :mod:`.export` does, and it is imported only when an
export is given a client. Needs the ``tfrecord_io[xarray]`` extra (dask, distributed).
"""
