"""Scale-out, sans-I/O: what a worker is, the Redis directory's keys and scripts.

A cluster is several worker processes (on one host or many), each a full
server owning its rooms, that share a room directory in Redis. Nothing here
does I/O: ``gameserver/trio/directory.py`` talks to Redis with these pieces,
and ``gameserver/trio/supervisor.py`` runs a host's workers.
"""

from .worker import WorkerInfo, direct_port, worker_url

__all__ = ["WorkerInfo", "direct_port", "worker_url"]
