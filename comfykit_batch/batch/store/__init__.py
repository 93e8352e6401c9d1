"""What is kept: the index (sqlite + journal), the resume walk, parts and merge, the object-storage mirror, records.

Modules, each importing only those before it: ``layout`` (file names), ``index_db`` (sqlite), ``records``
(``JobRecord``), ``remote`` (object storage and the mirror), ``journal``, ``index_json``, ``folder`` (where
files go), ``files_check``, ``legacy`` (folders written before sqlite), ``repair`` and ``parts`` (shards),
``fold``, ``live_index`` (the index a run writes), ``resume`` (the walk), ``view`` (read-only, for reports),
``store`` (``ResultStore``, the facade the run room uses) and ``merge`` (the command, over the store).
"""
