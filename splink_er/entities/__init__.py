"""Entities that last: a store of stable entity ids, the membership of every record, and the change feed.

Splink's cluster ids are recomputed from scratch each run; downstream tables need ids that stay. After each run
clusters the final matches, `stable_ids` maps every new cluster to the stored entity it inherits (most shared
members; a merge keeps the older id, a split keeps the id on the largest part), mints ids for the rest (`ids`),
and lists what changed as events; `store` writes all of it to a DuckDB file in one transaction.

    store.py       the DuckDB file: schema, one-transaction commits, one writer at a time, reads and exports
    ids.py         minting new ids from `entities.id_template`
    stable_ids.py  clusters of this run + stored membership -> stable ids and events
    layer.py       the job component that ties them to a run
"""
