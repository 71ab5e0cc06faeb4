"""Scale-out: a tenant's input sharded by identity, run by task-queue workers.

Nothing here imports Celery (``contactsync.celery`` does): sharding, the worker's
chunk runner, outcomes on the wire and the shard lease are plain code.
"""
