-- The owner of each shard (input partition) and its epoch: a worker assigned a
-- shard takes it by raising the epoch, and every transaction of a worker checks
-- that the epochs of the shards it touches are still the ones it took, so one
-- that lost a shard (a zombie) cannot write to it any more.
CREATE TABLE IF NOT EXISTS shard_owners (
    shard     INTEGER PRIMARY KEY,
    owner     TEXT NOT NULL,            -- the worker process: its name and a per-process id
    epoch     INTEGER NOT NULL,
    taken_at  TEXT NOT NULL
);
